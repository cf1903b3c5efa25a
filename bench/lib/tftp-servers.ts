/**
 * The two servers bench/tftp.ts compares, each in its own process on loopback: metalboot's TFTP
 * server (bench/tftp-server-main.ts) and in.tftpd of tftpd-hpa, run by hand in a chroot (never
 * the system service). Every process started here is in `children`, which the script kills on
 * any exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { tftpGet } from '../../lab/tftp-client.js';

export interface ServerHandle {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Processes started for a run; `killAll` is safe to call from an exit handler. */
export class Children {
  readonly #all = new Set<ChildProcess>();

  add(child: ChildProcess): void {
    this.#all.add(child);
  }

  delete(child: ChildProcess): void {
    this.#all.delete(child);
  }

  killAll(): void {
    for (const c of this.#all) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

async function freePort(): Promise<number> {
  // A free TCP port number is free enough for UDP on loopback in practice; verified by bind.
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function stopChild(children: Children, child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      console.error(`${name} did not stop, killing`);
      child.kill('SIGKILL');
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      children.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** metalboot's TFTP server serving `root`; under `node --cpu-prof` into `cpuProfDir` when given. */
export async function startMetalboot(
  children: Children,
  root: string,
  cpuProfDir: string | undefined,
): Promise<ServerHandle> {
  const prof = cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.resolve(cpuProfDir)];
  const child = spawn(
    process.execPath,
    [...prof, '--import', 'tsx', path.join(import.meta.dirname, '..', 'tftp-server-main.ts'), '--root', root],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('metalboot did not start within 30 s')), 30_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`metalboot exited with ${code}`)));
  });
  return { name: 'metalboot', port, stop: () => stopChild(children, child, 'metalboot') };
}

/** in.tftpd serving `root`, ready once it answers a request for `file`; or why it is not run. */
export async function startTftpdHpa(children: Children, root: string, file: string): Promise<ServerHandle | string> {
  if (!existsSync('/usr/sbin/in.tftpd')) return 'in.tftpd not installed (Debian package tftpd-hpa)';
  if (process.getuid?.() !== 0) return 'in.tftpd --secure needs root';
  const port = await freePort();
  // -L: foreground, -s: chroot to root, -u root: keep the user (no 'nobody' lookup surprises),
  // -B 1468: the same blksize cap as metalboot.
  const child = spawn(
    '/usr/sbin/in.tftpd',
    ['-L', '-4', '-a', `127.0.0.1:${port}`, '-u', 'root', '-B', '1468', '-s', root],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  children.add(child);
  // Ready when it answers a request.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await tftpGet({ port, file, options: [['blksize', '1468']], timeoutMs: 200, retries: 2, deadlineMs: 5000 });
      break;
    } catch (err) {
      if (child.exitCode !== null) return `in.tftpd exited with ${child.exitCode}`;
      if (Date.now() > deadline) {
        await stopChild(children, child, 'in.tftpd');
        return `in.tftpd did not answer: ${(err as Error).message}`;
      }
    }
  }
  return { name: 'tftpd-hpa', port, stop: () => stopChild(children, child, 'in.tftpd') };
}

/** The first line of `in.tftpd -V`. */
export function tftpdHpaVersion(): Promise<string> {
  return new Promise<string>((resolve) => {
    if (!existsSync('/usr/sbin/in.tftpd')) return resolve('not installed');
    const c = spawn('/usr/sbin/in.tftpd', ['-V'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out.trim().split('\n')[0] ?? ''));
    c.on('error', () => resolve('unknown'));
  });
}

/**
 * Busy CPU seconds of the whole machine (/proc/stat: user, nice, system, irq, softirq, steal).
 * The server's share is this less the client process's own CPU time: tftpd-hpa forks a
 * process per transfer that no per-process counter sees whole.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0) / 100; // USER_HZ is 100
  } catch {
    return undefined;
  }
}
