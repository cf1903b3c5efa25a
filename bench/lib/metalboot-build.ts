/**
 * The metalboot under test: by default the committed HEAD, exported with `git archive` and
 * compiled with tsc into bench/out/build/src-<hash of src/, package.json, ipxe-templates, ui>/, so work in progress in this checkout never
 * leaks into a figure; or, with `worktree`, src/ as it is on disk (through tsx).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './machine.js';

export interface MetalbootBuild {
  readonly node: string;
  readonly nodeArgs: readonly string[];
  readonly entry: string;
  /** What was measured, for RESULTS.md. */
  readonly label: string;
  /** Root to import product modules from (for in-process benches). */
  readonly root: string;
}

export function metalbootBuild(opts: { worktree: boolean; sha: string; outDir: string }): MetalbootBuild {
  if (opts.worktree) {
    return {
      node: process.execPath,
      nodeArgs: ['--import', 'tsx'],
      entry: path.join(REPO_ROOT, 'src/main.ts'),
      label: 'working tree (src/ through tsx)',
      root: REPO_ROOT,
    };
  }
  // Keyed by the trees that make the product, so commits that touch only tests or docs reuse a build.
  const trees = execFileSync(
    'git',
    ['rev-parse', `${opts.sha}:src`, `${opts.sha}:package.json`, `${opts.sha}:ipxe-templates`, `${opts.sha}:ui`],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  const key = createHash('sha256').update(trees).digest('hex').slice(0, 12);
  const dir = path.join(opts.outDir, 'build', `src-${key}`);
  const entry = path.join(dir, 'dist/src/main.js');
  if (!existsSync(entry)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync(
      'git',
      ['archive', opts.sha, 'src', 'ipxe-templates', 'ui', 'package.json', 'tsconfig.json', 'tsconfig.build.json'],
      { cwd: REPO_ROOT, maxBuffer: 256 * 2 ** 20 },
    );
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(
      process.execPath,
      [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.build.json')],
      { cwd: dir, stdio: 'inherit', timeout: 300_000 },
    );
  }
  return {
    node: process.execPath,
    nodeArgs: [],
    entry,
    label: `commit ${opts.sha.slice(0, 12)} (git archive + tsc, node dist/src/main.js)`,
    root: path.join(dir, 'dist'),
  };
}
