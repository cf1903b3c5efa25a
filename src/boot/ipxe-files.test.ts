import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IpxeFiles, normalizeRequestPath } from './ipxe-files.js';

describe('normalizeRequestPath', () => {
  it.each([
    ['snponly.efi', 'snponly.efi'],
    ['/snponly.efi', 'snponly.efi'],
    ['//snponly.efi', 'snponly.efi'],
    ['./snponly.efi', 'snponly.efi'],
    ['arm64-efi//snponly.efi', 'arm64-efi/snponly.efi'],
    ['/etc/passwd', 'etc/passwd'], // root-relative: never leaves the root
    ['a..b', 'a..b'],
  ])('%s → %s', (name, expected) => {
    expect(normalizeRequestPath(name)).toEqual({ kind: 'ok', path: expected });
  });

  it.each([
    ['', 'empty-name'],
    ['/', 'empty-name'],
    ['.', 'empty-name'],
    ['../etc/passwd', 'traversal'],
    ['a/../../b', 'traversal'],
    ['/..', 'traversal'],
    ['a\\..\\b', 'backslash'],
    ['\\Boot\\x64\\wdsmgfw.efi', 'backslash'],
    ['C:/Windows', 'drive-letter'],
    ['a\u0000b', 'control-char'],
    ['a\nb', 'control-char'],
    ['a\u007fb', 'control-char'],
  ])('%j is refused: %s', (name, reason) => {
    expect(normalizeRequestPath(name)).toEqual({ kind: 'refused', reason });
  });
});

describe('IpxeFiles', () => {
  let dir: string;
  let root: string;
  let outside: string;
  let clock: number;
  let files: IpxeFiles;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ipxe-files-'));
    root = path.join(dir, 'root');
    outside = path.join(dir, 'outside');
    mkdirSync(path.join(root, 'arm64-efi'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(root, 'snponly.efi'), 'x86 snponly');
    writeFileSync(path.join(root, 'arm64-efi', 'snponly.efi'), 'arm snponly');
    writeFileSync(path.join(outside, 'secret'), 'secret');
    writeFileSync(path.join(outside, 'ipxe.efi'), 'ipxe from /boot');
    symlinkSync(path.join(outside, 'secret'), path.join(root, 'leak'));
    symlinkSync(outside, path.join(root, 'outdir'));
    symlinkSync('snponly.efi', path.join(root, 'link.efi'));
    clock = 0;
    files = new IpxeFiles({ root, watch: false, now: () => clock, recheckMs: 1000 });
    await files.start();
  });

  afterEach(async () => {
    await files.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a file with size, mtime and a stable etag', () => {
    const f = files.get('snponly.efi');
    expect(f).toMatchObject({ name: 'snponly.efi', size: 11 });
    expect(f!.data.toString()).toBe('x86 snponly');
    expect(f!.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(files.get('/snponly.efi')!.etag).toBe(f!.etag);
  });

  it('serves the default aliases, including subdirectory targets', () => {
    expect(files.get('snponly-x86_64.efi')!.data.toString()).toBe('x86 snponly');
    expect(files.get('snponly-arm64.efi')!.data.toString()).toBe('arm snponly');
    expect(files.get('snponly-arm64.efi')!.name).toBe('snponly-arm64.efi');
    expect(files.lookup('ipxe-arm64.efi')).toEqual({ kind: 'missing' });
  });

  it('serves subdirectories and symlinks that stay inside the root', () => {
    expect(files.get('arm64-efi/snponly.efi')!.data.toString()).toBe('arm snponly');
    expect(files.get('link.efi')!.data.toString()).toBe('x86 snponly');
  });

  it.each([
    ['leak', 'outside-root'],
    ['outdir/secret', 'outside-root'],
    ['../outside/secret', 'traversal'],
    ['arm64-efi/../../outside/secret', 'traversal'],
  ])('refuses %s (%s)', (name, reason) => {
    expect(files.lookup(name)).toEqual({ kind: 'refused', reason });
    expect(files.get(name)).toBeUndefined();
  });

  it('says missing for absent files and directories', () => {
    expect(files.lookup('nope.efi')).toEqual({ kind: 'missing' });
    expect(files.lookup('arm64-efi')).toEqual({ kind: 'missing' });
    expect(files.lookup('/etc/passwd')).toEqual({ kind: 'missing' });
  });

  it('follows symlinks into an extra root when configured', async () => {
    symlinkSync(path.join(outside, 'ipxe.efi'), path.join(root, 'ipxe.efi'));
    const withExtra = new IpxeFiles({ root, watch: false, extraRoots: [outside] });
    await withExtra.start();
    expect(withExtra.get('ipxe.efi')!.data.toString()).toBe('ipxe from /boot');
    expect(withExtra.get('ipxe-x86_64.efi')!.data.toString()).toBe('ipxe from /boot');
    await withExtra.close();
    expect(files.lookup('ipxe.efi')).toEqual({ kind: 'refused', reason: 'outside-root' });
  });

  it('refuses files over the size limit', async () => {
    const small = new IpxeFiles({ root, watch: false, maxFileSize: 4 });
    await small.start();
    expect(small.lookup('snponly.efi')).toEqual({ kind: 'refused', reason: 'too-large' });
    await small.close();
  });

  it('serves from memory until the recheck interval, then sees a changed file', () => {
    const before = files.get('snponly.efi')!;
    writeFileSync(path.join(root, 'snponly.efi'), 'new snponly build');
    utimesSync(path.join(root, 'snponly.efi'), new Date(), new Date(Date.now() + 5000));
    clock = 500;
    expect(files.get('snponly.efi')).toBe(before);
    clock = 1500;
    const after = files.get('snponly.efi')!;
    expect(after.data.toString()).toBe('new snponly build');
    expect(after.etag).not.toBe(before.etag);
    expect(before.data.toString()).toBe('x86 snponly'); // a running transfer keeps its copy
  });

  it('sees a file created after start at once (stat on miss), and one removed after a recheck', () => {
    expect(files.get('late.efi')).toBeUndefined();
    writeFileSync(path.join(root, 'late.efi'), 'late');
    expect(files.get('late.efi')!.data.toString()).toBe('late');
    rmSync(path.join(root, 'late.efi'));
    clock = 2000;
    expect(files.get('late.efi')).toBeUndefined();
  });

  it('refuses to start on a missing root', async () => {
    const bad = new IpxeFiles({ root: path.join(dir, 'nope'), watch: false });
    await expect(bad.start()).rejects.toMatchObject({ code: 'IPXE_ERR_ROOT_NOT_DIRECTORY' });
  });

  it('reloads at once after fs.watch reports a change', async () => {
    const watched = new IpxeFiles({ root, now: () => clock, recheckMs: 1_000_000 });
    await watched.start();
    expect(watched.get('snponly.efi')!.data.toString()).toBe('x86 snponly');
    writeFileSync(path.join(root, 'snponly.efi'), 'rebuilt');
    utimesSync(path.join(root, 'snponly.efi'), new Date(), new Date(Date.now() + 5000));
    const deadline = Date.now() + 5000;
    while (watched.get('snponly.efi')!.data.toString() !== 'rebuilt' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(watched.get('snponly.efi')!.data.toString()).toBe('rebuilt');
    await watched.close();
  });
});
