import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { version } from './version.js';

describe('version', () => {
  it("is the package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(version).toBe(pkg.version);
    expect(version).not.toBe('0.0.0');
  });
});
