/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, and the share of time
 * under each of a few named subtrees, so RESULTS.md can say what limits a server.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly selfPct: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Time not idle (everything but "(idle)"). */
  readonly busyMs: number;
  readonly top: readonly ProfileEntry[];
  /** Inclusive time of functions whose name matches, as a share of busy time. */
  readonly inclusive: readonly { readonly name: string; readonly ms: number; readonly pct: number }[];
  /** Self time summed over caller-defined groups (first matching group wins; the rest is "other"). */
  readonly groups: readonly { readonly name: string; readonly ms: number; readonly pct: number }[];
}

export interface ProfileGroup {
  readonly name: string;
  readonly match: (fn: string, where: string) => boolean;
}

function where(url: string, line: number): string {
  if (url === '') return '';
  const short = url.replace(/^file:\/\//, '');
  const m = /\/(src|node_modules)\/(.*)$/.exec(short);
  return `${m === null ? path.basename(short) : `${m[1]}/${m[2]}`}:${line + 1}`;
}

/**
 * `windowUs`: only samples taken within [from, to], in the profile's clock (V8 TimeTicks, µs of
 * CLOCK_MONOTONIC: `process.hrtime.bigint() / 1000n` in any process on the same machine), so
 * start-up and shutdown stay out of a profile of the load.
 */
export function summariseProfile(
  file: string,
  opts: {
    top?: number;
    inclusive?: readonly string[];
    windowUs?: readonly [number, number];
    groups?: readonly ProfileGroup[];
  } = {},
): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time per node from samples and their time deltas (µs).
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let t = p.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (opts.windowUs !== undefined && (t < opts.windowUs[0] || t > opts.windowUs[1])) continue;
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + dt);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  let idleUs = 0;
  const agg = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idleUs += us;
    const w = where(n.callFrame.url, n.callFrame.lineNumber);
    const key = `${name}@${w}`;
    const e = agg.get(key) ?? { name, where: w, us: 0 };
    e.us += us;
    agg.set(key, e);
  }
  const busyUs = totalUs - idleUs;
  const top = [...agg.values()]
    .filter((e) => e.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, opts.top ?? 15)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, selfPct: (100 * e.us) / Math.max(1, busyUs) }));

  // Inclusive time: total self time of each matching node's subtree, counting nested matches once.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = (opts.inclusive ?? []).map((fname) => {
    let us = 0;
    for (const [id, t] of selfUs) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (byId.get(cur)!.callFrame.functionName === fname) {
          us += t;
          break;
        }
      }
    }
    return { name: fname, ms: us / 1000, pct: (100 * us) / Math.max(1, busyUs) };
  });
  const groupUs = new Map<string, number>();
  for (const e of agg.values()) {
    if (e.name === '(idle)') continue;
    const g = opts.groups?.find((x) => x.match(e.name, e.where))?.name ?? 'other';
    groupUs.set(g, (groupUs.get(g) ?? 0) + e.us);
  }
  const groups = [...groupUs]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: us / 1000, pct: (100 * us) / Math.max(1, busyUs) }));
  return { totalMs: totalUs / 1000, busyMs: busyUs / 1000, top, inclusive, groups };
}

/**
 * A summary as report text: `top`, the rows of a `| function | where | ms | % |` table (self
 * time), and `incl`, the inclusive shares in one line, largest first.
 */
export function profileText(s: ProfileSummary): { readonly top: string; readonly incl: string } {
  const top = s.top
    .map((e) => `| ${e.name} | ${e.where || '(native)'} | ${e.selfMs.toFixed(0)} | ${e.selfPct.toFixed(1)}% |`)
    .join('\n');
  const incl = s.inclusive
    .filter((e) => e.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .map((e) => `${e.name} ${e.pct.toFixed(1)}%`)
    .join(', ');
  return { top, incl };
}
