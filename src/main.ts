#!/usr/bin/env node
/** The process: config → logger → the product's wings (src/wiring/) → signals → exit code. */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { pino } from 'pino';
import { cidrs6Of, cidrsOf, loadConfig } from './config/load.js';
import { helpText } from './config/flags.js';
import { buildProduct } from './wiring/product.js';
import { processRegistry } from './wiring/registry.js';
import { closeAll, startAll } from './base/service.js';
import { formatCidr } from './net/ipv4.js';
import { formatIpv6Cidr } from './net/ipv6.js';
import { version } from './base/version.js';

async function main(): Promise<number> {
  const loaded = loadConfig({
    argv: process.argv.slice(2),
    env: process.env,
    readFile: (p) => readFileSync(p, 'utf8'),
    localAddresses: () => cidrsOf(networkInterfaces()),
    localAddresses6: () => cidrs6Of(networkInterfaces()),
  });
  if (loaded.kind === 'help') {
    process.stdout.write(helpText(version));
    return 0;
  }
  if (loaded.kind === 'version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  if (loaded.kind === 'invalid') {
    process.stderr.write(`metalboot: invalid configuration:\n${loaded.errors.map((e) => `  - ${e}\n`).join('')}`);
    return 2;
  }
  const config = loaded.config;
  const local = cidrsOf(networkInterfaces());
  // Only where DHCPv4 needs the address (an IPv6-only network need not have one).
  if (config.dhcp.enabled && !local.some((c) => c.address === config.dhcp.serverIp.address)) {
    // Fail fast: in Kubernetes this turns the Multus start-up race (the pod starts before its
    // provisioning interface exists) into a restart instead of a server nobody can reach.
    process.stderr.write(
      `metalboot: server IP ${formatCidr(config.dhcp.serverIp)} is not on any interface of this host ` +
        `(have: ${local.map(formatCidr).join(', ') || 'none'}); check --server-ip / SERVER_IP and the NetworkAttachmentDefinition\n`,
    );
    return 1;
  }
  const v6 = config.dhcp6?.serverIp;
  if (v6 !== undefined && !cidrs6Of(networkInterfaces()).some((c) => c.address === v6.address)) {
    process.stderr.write(
      `metalboot: IPv6 server address ${formatIpv6Cidr(v6)} is not on any interface of this host; check --dhcp6-server-ip\n`,
    );
    return 1;
  }
  const logger = pino({ level: config.log.level, base: { service: 'metalboot' } });
  const registry = processRegistry();
  logger.info({ version, config: loaded.configFile, serverIp: formatCidr(config.dhcp.serverIp) }, 'starting');

  let product: ReturnType<typeof buildProduct>;
  try {
    product = buildProduct(config, { logger, registry });
    await startAll(product.services);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE: try sudo)' : '';
    logger.fatal({ err }, `start-up failed${hint}`);
    return 1;
  }
  logger.info({ services: product.services.map((s) => s.name) }, 'ready');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      void closeAll(product.services).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`metalboot: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
