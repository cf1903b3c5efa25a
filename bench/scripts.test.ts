/**
 * Every script in bench/ declares its options and a main() and does nothing when imported: no
 * output, no exit, no signal or exit handlers (it runs only as the entry point, through the
 * harness).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const SCRIPTS = readdirSync(import.meta.dirname).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

describe('bench scripts', () => {
  afterEach(() => vi.restoreAllMocks());

  it('are all here', () => {
    expect(SCRIPTS.sort()).toEqual([
      'boot-storm-client.ts',
      'boot-storm-upstream.ts',
      'boot-storm.ts',
      'dhcp-codec.ts',
      'dhcp.ts',
      'dhcp6.ts',
      'firmware-boot.ts',
      'http-proxy.ts',
      'state-scale.ts',
      'tftp-server-main.ts',
      'tftp.ts',
    ]);
  });

  it.each(SCRIPTS)('%s exports main() and runs nothing on import', async (file) => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    const on = vi.spyOn(process, 'on');
    const mod = (await import(/* @vite-ignore */ path.join(import.meta.dirname, file))) as {
      main?: unknown;
      options?: unknown;
    };
    expect(typeof mod.main).toBe('function');
    if (file !== 'boot-storm-client.ts') expect(typeof mod.options).toBe('object');
    expect(exit).not.toHaveBeenCalled();
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
    expect(on).not.toHaveBeenCalled();
  });
});
