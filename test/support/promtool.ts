/**
 * The `promtool` binary for the chart tests (`promtool check rules`, `promtool test rules`).
 *
 * Debian's `prometheus` package carries it, but installing that package also installs (and may
 * start) a Prometheus server: instead, the package is fetched once with `apt-get download`
 * (about 19 MB; the lists `apt-get update` leaves behind are enough), `usr/bin/promtool` alone is
 * unpacked from it into `.cache/tools/` (gitignored), and later runs reuse it.
 *
 * `METALBOOT_PROMTOOL=/path/to/promtool` uses a promtool of your own instead; one on PATH is
 * used as it is.
 */
import { execFile } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TOOLS_DIR = path.join(REPO_ROOT, '.cache', 'tools');

export class PromtoolUnavailableError extends Error {
  readonly code = 'PROMTOOL_UNAVAILABLE';
}

/** Where the promtool unpacked from Debian's package is kept. */
export function cachedPromtoolPath(toolsDir = TOOLS_DIR): string {
  return path.join(toolsDir, 'debian-prometheus', 'promtool');
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(tool: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${tool}`]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The path of a working promtool: $METALBOOT_PROMTOOL, else one on PATH, else the cached one,
 * else unpacked now from Debian's package. Throws PromtoolUnavailableError (naming the step
 * that failed) when none can be had.
 */
export async function promtoolBinary(env: NodeJS.ProcessEnv = process.env, toolsDir = TOOLS_DIR): Promise<string> {
  const own = env.METALBOOT_PROMTOOL;
  if (own !== undefined && own !== '') {
    if (!(await isExecutable(own)))
      throw new PromtoolUnavailableError(`METALBOOT_PROMTOOL=${own} is not an executable file`);
    return own;
  }
  const installed = await onPath('promtool');
  if (installed !== undefined) return installed;
  const target = cachedPromtoolPath(toolsDir);
  if (await isExecutable(target)) return target;
  await unpackPromtool(target);
  return target;
}

async function unpackPromtool(target: string): Promise<void> {
  const finalDir = path.dirname(target);
  await mkdir(path.dirname(finalDir), { recursive: true });
  const work = await mkdtemp(`${finalDir}.partial-`);
  const step = async (what: string, file: string, args: readonly string[]) => {
    try {
      return await run(file, args, { cwd: work, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new PromtoolUnavailableError(
        `${what} failed: ${(e.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || e.message}`,
      );
    }
  };
  try {
    // 1. The package file, into the work directory, without installing it.
    await step('apt-get download prometheus', 'apt-get', ['download', 'prometheus']);
    const deb = (await readdir(work)).find((f) => /^prometheus_.*\.deb$/.test(f));
    if (deb === undefined) throw new PromtoolUnavailableError('apt-get download wrote no prometheus_*.deb');
    // 2. usr/bin/promtool from its data archive.
    await step('dpkg-deb | tar', 'sh', [
      '-c',
      'dpkg-deb --fsys-tarfile "$1" | tar -x ./usr/bin/promtool',
      'sh',
      path.join(work, deb),
    ]);
    const out = path.join(work, 'promtool');
    await rename(path.join(work, 'usr/bin/promtool'), out);
    await chmod(out, 0o755);
    await chmod(work, 0o755);
    await step('promtool --version', out, ['--version']);
    await rm(path.join(work, deb), { force: true });
    await rm(path.join(work, 'usr'), { recursive: true, force: true });
    // 3. Into place in one rename; a concurrent unpack that got there first wins.
    try {
      await rename(work, finalDir);
    } catch (err) {
      if (!(await isExecutable(target))) throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
