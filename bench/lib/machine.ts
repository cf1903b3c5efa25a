/**
 * What a benchmark records about where it ran: the machine, tool versions, the load before a
 * measurement, and a process's CPU time from /proc. Linux only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly memGiB: number;
}

export function machine(): Machine {
  const list = cpus();
  return {
    nproc: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    kernel: release(),
    memGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** First line of a command's output, or `undefined` when it is missing or fails. */
export function commandOutput(cmd: string, args: readonly string[]): string | undefined {
  const r = spawnSync(cmd, [...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) return undefined;
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return text === '' ? undefined : text.split('\n')[0]!.trim();
}

/** Debian package version of `pkg`, or undefined. */
export function debVersion(pkg: string): string | undefined {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
  return commandOutput('dpkg-query', ['-W', '-f', '${Version}', pkg]);
}

export interface GitState {
  readonly sha: string;
  /** Paths under src/ that differ from the commit (other work in progress in this checkout). */
  readonly srcDirty: readonly string[];
}

export function gitState(): GitState {
  const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return {
    sha,
    srcDirty: status
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3)),
  };
}

export function loadAvg1(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

export interface QuietCheck {
  /** 1-minute load average when the wait ended. */
  readonly load1: number;
  readonly waitedS: number;
  readonly quiet: boolean;
}

/**
 * Waits until the 1-minute load average drops below `threshold`, polling every 5 s, for at most
 * `maxWaitS`; then returns either way so the caller measures and records the load.
 */
export async function waitForQuiet(
  threshold: number,
  maxWaitS: number,
  log: (s: string) => void = () => undefined,
): Promise<QuietCheck> {
  const started = Date.now();
  let load = loadAvg1();
  let said = false;
  while (load >= threshold && (Date.now() - started) / 1000 < maxWaitS) {
    if (!said) {
      log(`load ${load.toFixed(2)} ≥ ${threshold}: waiting up to ${maxWaitS} s for a quiet machine`);
      said = true;
    }
    await new Promise((r) => setTimeout(r, 5_000));
    load = loadAvg1();
  }
  return { load1: load, waitedS: Math.round((Date.now() - started) / 1000), quiet: load < threshold };
}

let clkTck: number | undefined;

/** utime and stime of `pid` in seconds (/proc/<pid>/stat fields 14, 15), or undefined once it is gone. */
export function cpuTimes(pid: number): { user: number; sys: number } | undefined {
  clkTck ??= Number(commandOutput('getconf', ['CLK_TCK']) ?? 100);
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command name start at field 3.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]) / clkTck, sys: Number(rest[12]) / clkTck };
}

/** utime + stime of `pid` in seconds, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t === undefined ? undefined : t.user + t.sys;
}

/** Peak and current resident set of `pid` in MiB (/proc/<pid>/status VmHWM, VmRSS). */
export function memoryMiB(pid: number): { rss: number; hwm: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Filesystem type of the mount holding `dir` (findmnt), for the durability notes. */
export function filesystemOf(dir: string): string {
  return (commandOutput('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', dir]) ?? 'unknown').replace(/\s+/g, ' ');
}

/** `pid` and all its descendants alive now (/proc/<pid>/task/<tid>/children), parents first. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    out.push(p);
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/))
          if (c !== '') queue.push(Number(c));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return out;
}

/** utime + stime of `pid` and its live descendants, seconds. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((s, p) => s + (cpuSeconds(p) ?? 0), 0);
}

/** Resident set of `pid` and its live descendants, MiB. */
export function treeRssMiB(pid: number): number {
  return processTree(pid).reduce((s, p) => s + (memoryMiB(p)?.rss ?? 0), 0);
}
