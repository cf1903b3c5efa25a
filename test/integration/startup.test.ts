/** The metalboot process itself: --help, invalid configuration, and the server-IP self-check. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });

describe('metalboot process', () => {
  it('--help prints the reference and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--dhcp-range START,END[,SECONDS|infinite]');
  });

  it('invalid configuration exits 2 listing every problem by key', () => {
    const r = run('--server-ip', 'nope', '--dhcp-range', '1,2', '--tftp-listen', 'x');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('dhcp.serverIP: "nope" is not IP[/prefix] or "auto"');
    expect(r.stderr).toContain('dhcp.ranges[0]: range start "1" is not an IPv4 address');
    expect(r.stderr).toContain('tftp.listen: "x" is not ADDR:PORT (or "" to disable)');
  });

  it('fails fast when the server IP is on no interface (the Multus start-up race)', () => {
    // 203.0.113.0/24 is TEST-NET-3: never configured on a real interface.
    const r = run('--server-ip', '203.0.113.7/24', '--tftp-listen', '', '--http-listen', '127.0.0.1:0');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('server IP 203.0.113.7/24 is not on any interface of this host');
  });
});
