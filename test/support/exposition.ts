/**
 * The Prometheus text exposition format (what GET /metrics answers), read back for tests: each
 * family's TYPE, and the label names and values of every sample.
 */

export interface Exposition {
  /** Family name → counter, gauge, histogram, summary or untyped. */
  readonly types: ReadonlyMap<string, string>;
  /** Sample name (`x_bucket`, `x_total`, …) → label name → the values seen. */
  readonly samples: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>;
}

const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+\S+(\s+\S+)?$/;
const LABEL = /\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseLabels(text: string, line: string): Map<string, string> {
  const labels = new Map<string, string>();
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (m === null) throw new Error(`unreadable labels in: ${line}`);
    labels.set(
      m[1]!,
      m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c)),
    );
  }
  return labels;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, Map<string, Set<string>>>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const t = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (t !== null) types.set(t[1]!, t[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unreadable sample: ${line}`);
    const labels = samples.get(m[1]!) ?? new Map<string, Set<string>>();
    samples.set(m[1]!, labels);
    for (const [k, v] of parseLabels(m[2] ?? '', line)) {
      const values = labels.get(k) ?? new Set<string>();
      labels.set(k, values);
      values.add(v);
    }
  }
  return { types, samples };
}

/** The family a queried series name belongs to: itself, or a histogram's or summary's for its _bucket, _sum and _count. */
export function familyOf(e: Exposition, name: string): string | undefined {
  if (e.types.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m === null) return undefined;
  const type = e.types.get(m[1]!);
  if (type === 'histogram' || (type === 'summary' && m[2] !== 'bucket')) return m[1];
  return undefined;
}

/**
 * Whether a query for `name` can return anything: a series with samples, or a counter or gauge
 * family that has none yet (labelled, never incremented), or a histogram's or summary's series.
 * A histogram's own name has no series of its own.
 */
export function isQueryable(e: Exposition, name: string): boolean {
  if (e.samples.has(name)) return true;
  const family = familyOf(e, name);
  if (family === undefined) return false;
  return family !== name || e.types.get(name) === 'counter' || e.types.get(name) === 'gauge';
}
