/** The cache directory deletes only what it created: its own marked subdirectory. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CACHE_SUBDIR, CacheLayout, cacheDirProblem } from './cache-layout.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'metalboot-cachedir-'));
  dirs.push(d);
  return d;
};
const log = pino({ level: 'silent' });
const cache = (dir: string) => {
  const layout = new CacheLayout(dir);
  return { open: () => layout.open(log) };
};

describe('CacheLayout ownership', () => {
  it("never touches files of the directory it is given, only its own subdirectory's", async () => {
    const dir = tmp();
    // What a shared directory (or the cache layout of an earlier version) may hold.
    mkdirSync(path.join(dir, 'tmp'));
    writeFileSync(path.join(dir, 'tmp', 'keep.txt'), 'mine');
    mkdirSync(path.join(dir, 'entries'));
    writeFileSync(path.join(dir, 'entries', 'not-a-cache-entry'), 'mine too');
    const c = cache(dir);
    await c.open();
    expect(readFileSync(path.join(dir, 'tmp', 'keep.txt'), 'utf8')).toBe('mine');
    expect(readFileSync(path.join(dir, 'entries', 'not-a-cache-entry'), 'utf8')).toBe('mine too');
    expect(existsSync(path.join(dir, CACHE_SUBDIR, '.metalboot-image-cache'))).toBe(true);
    // Its own directory is reopened as its own.
    await cache(dir).open();
  });

  it('refuses a subdirectory of its name that it did not create', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, CACHE_SUBDIR));
    writeFileSync(path.join(dir, CACHE_SUBDIR, 'precious'), 'x');
    await expect(cache(dir).open()).rejects.toMatchObject({ code: 'IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS' });
    expect(existsSync(path.join(dir, CACHE_SUBDIR, 'precious'))).toBe(true);
  });

  // Pure: a test must never point a cache at a real system directory, in case the check failed.
  it.each(['/', '/tmp', '/tmp/', '/var/lib', '/etc/', '/usr/../etc'])('refuses the system directory %s', (dir) => {
    expect(cacheDirProblem(dir)).toMatch(/system directory/);
  });

  it.each(['/var/lib/metalboot', '/var/cache/metalboot', '/tmp/metalboot-x'])('takes %s', (dir) => {
    expect(cacheDirProblem(dir)).toBeUndefined();
  });
});
