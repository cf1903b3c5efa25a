/**
 * A real Linux kernel for end-to-end boots: Debian's cloud kernel (bzImage with an EFI stub, so
 * both SeaBIOS/iPXE and UEFI/iPXE can boot it). Taken from $METALBOOT_TEST_KERNEL, or extracted
 * once into .cache/tools/ from the Debian package (downloaded with `apt-get download`, never
 * installed), which .ci/run prepares before the tests run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './metalboot-process.js';

export const KERNEL_CACHE = path.join(REPO_ROOT, '.cache/tools/vmlinuz');

export function testKernel(): string {
  const fromEnv = process.env.METALBOOT_TEST_KERNEL;
  if (fromEnv !== undefined && existsSync(fromEnv)) return fromEnv;
  if (existsSync(KERNEL_CACHE)) return KERNEL_CACHE;
  mkdirSync(path.dirname(KERNEL_CACHE), { recursive: true });
  const work = mkdtempSync(path.join(path.dirname(KERNEL_CACHE), 'kernel-'));
  try {
    const deps = execFileSync('apt-cache', ['depends', 'linux-image-cloud-amd64'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const pkg = /Depends: (linux-image-\S+)/.exec(deps)?.[1];
    if (pkg === undefined)
      throw new Error('apt-cache found no linux-image-cloud-amd64 kernel package (run apt-get update)');
    execFileSync('apt-get', ['download', pkg], { cwd: work, stdio: 'ignore', timeout: 300_000 });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'))!;
    execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "${deb}" | tar -x ./boot`], { cwd: work, timeout: 120_000 });
    const vmlinuz = readdirSync(path.join(work, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
    renameSync(path.join(work, 'boot', vmlinuz), KERNEL_CACHE);
    return KERNEL_CACHE;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
