/**
 * Runs the metalboot TFTP server alone in its own process for bench/tftp.ts, so that the
 * benchmark's clients do not share its event loop. Prints "READY <port>" when listening and
 * closes on SIGTERM.
 *
 *   node --import tsx bench/tftp-server-main.ts --root DIR [--port N] [--single-port]
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { IpxeFiles } from '../src/boot/ipxe-files.js';
import { TftpServer } from '../src/tftp/tftp-server.js';
import { defineOptions, runIfEntry, type Args } from './lib/harness.js';

export const options = defineOptions({
  root: { type: 'string', help: 'directory to serve (required)' },
  port: { type: 'number', help: 'UDP port on 127.0.0.1 (0: any free one)', default: '0' },
  'single-port': { type: 'boolean', help: 'answer every transfer from the listening port' },
});

export async function main(args: Args<typeof options>): Promise<void> {
  if (!args.root) throw new Error('--root is required');
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const files = new IpxeFiles({ root: args.root, logger });
  await files.start();
  const registry = new Registry();
  const server = new TftpServer({
    listen: { host: '127.0.0.1', port: args.port },
    singlePort: args['single-port'],
    files,
    logger,
    registry,
    // The benchmark's clients all come from 127.0.0.1.
    maxPerClient: 100_000,
    maxTransfers: 100_000,
  });
  await server.start();
  process.stdout.write(`READY ${server.address().port}\n`);
  // SIGUSR2 prints the server's counters to stderr (for looking into a slow run).
  process.on('SIGUSR2', () => {
    void registry.metrics().then((text) =>
      process.stderr.write(
        `${text
          .split('\n')
          .filter((l) => l.startsWith('metalboot_tftp_') && !l.includes('_bucket'))
          .join('\n')}\n`,
      ),
    );
  });
  process.on('SIGTERM', () => {
    void server.close().then(async () => {
      await files.close();
      process.exit(0);
    });
  });
}

runIfEntry(import.meta.url, {
  name: 'tftp-server-main',
  usage: 'node --import tsx bench/tftp-server-main.ts --root DIR [--port N] [--single-port]',
  about:
    'The metalboot TFTP server alone in its own process, for bench/tftp.ts: prints "READY <port>" when listening, closes on SIGTERM.',
  options,
  main,
  afterMain: 'stay',
});
