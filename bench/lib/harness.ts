/**
 * What every benchmark script shares: its options declared once as a table (parsed, checked and
 * listed by --help from that table), an overall time limit, waiting for a quiet machine, writing
 * its RESULTS.md section, and the exit code.
 *
 * A script exports its options and a `main(args, run)`, and its only top-level statement is
 * `runIfEntry(import.meta.url, script)`: run as `node --import tsx bench/x.ts` it parses argv and
 * runs; imported (by a test, or by another script for its types) it does nothing.
 *
 * Exit codes: 0 done, 1 failed (the error is printed) or bad arguments, 2 over the time limit.
 */
import { realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect, parseArgs } from 'node:util';
import { REPO_ROOT, waitForQuiet, type QuietCheck } from './machine.js';
import { writeResultsSection } from './results-md.js';

// ───────────────────────────── options ─────────────────────────────

interface OptionBase {
  /** One line for --help. */
  readonly help: string;
}

/** A flag: false unless given. */
export interface BooleanOption extends OptionBase {
  readonly type: 'boolean';
}

/**
 * A value: `string`, `number`, `list` (comma-separated strings) or `numbers` (comma-separated
 * numbers). `default` is written as on the command line; without one the value is undefined when
 * the option is not given (the script picks a default, e.g. one that depends on --quick).
 */
export interface ValueOption extends OptionBase {
  readonly type: 'string' | 'number' | 'list' | 'numbers';
  readonly default?: string;
  /** Allowed values (each element, for a list). */
  readonly choices?: readonly string[];
}

export type OptionSpec = BooleanOption | ValueOption;
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S> = S extends { readonly type: 'boolean' }
  ? boolean
  : S extends { readonly type: 'number' }
    ? number
    : S extends { readonly type: 'list' }
      ? readonly string[]
      : S extends { readonly type: 'numbers' }
        ? readonly number[]
        : string;

/** Parsed options: by the table's names, typed by their `type`; undefined only for a value without a default. */
export type Args<T extends OptionTable> = {
  readonly [K in keyof T]: T[K] extends { readonly type: 'boolean' }
    ? boolean
    : T[K] extends { readonly default: string }
      ? ValueOf<T[K]>
      : ValueOf<T[K]> | undefined;
};

/** Keeps the literal types of a table, so that `Args<typeof options>` knows each option's type. */
export function defineOptions<const T extends OptionTable>(table: T): T {
  return table;
}

export type BenchErrorCode = 'BENCH_ERR_USAGE' | 'BENCH_ERR_TIME_LIMIT';

export class BenchError extends Error {
  override readonly name = 'BenchError';
  constructor(
    readonly code: BenchErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function convert(name: string, spec: ValueOption, raw: string): unknown {
  const items = spec.type === 'list' || spec.type === 'numbers' ? raw.split(',').map((s) => s.trim()) : [raw];
  if (spec.choices !== undefined) {
    const bad = items.find((i) => !spec.choices!.includes(i));
    if (bad !== undefined)
      throw new BenchError(
        'BENCH_ERR_USAGE',
        `--${name}: ${JSON.stringify(bad)} is not one of ${spec.choices.join(', ')}`,
      );
  }
  if (spec.type === 'string') return raw;
  if (spec.type === 'list') return items;
  const nums = items.map((i) => (i === '' ? NaN : Number(i)));
  const bad = nums.findIndex((n) => !Number.isFinite(n));
  if (bad >= 0) throw new BenchError('BENCH_ERR_USAGE', `--${name}: ${JSON.stringify(items[bad])} is not a number`);
  return spec.type === 'number' ? nums[0] : nums;
}

export interface Parsed<T extends OptionTable> {
  readonly args: Args<T>;
  readonly positionals: readonly string[];
  readonly help: boolean;
}

/**
 * Parses `argv` (without node and the script) against `table`, plus --help. Unknown options,
 * a missing value, a wrong number of positionals, a value outside `choices` or a number that
 * is not one throw BenchError BENCH_ERR_USAGE.
 */
export function parseOptions<T extends OptionTable>(
  table: T,
  argv: readonly string[],
  positionals: readonly string[] = [],
): Parsed<T> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(
          Object.entries(table).map(([k, s]) => [k, { type: s.type === 'boolean' ? 'boolean' : 'string' } as const]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: positionals.length > 0,
      strict: true,
    });
  } catch (err) {
    throw new BenchError('BENCH_ERR_USAGE', (err as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return { args: {} as Args<T>, positionals: parsed.positionals, help: true };
  if (parsed.positionals.length !== positionals.length) {
    throw new BenchError(
      'BENCH_ERR_USAGE',
      `expected ${positionals.length} arguments (${positionals.join(' ')}), got ${parsed.positionals.length}`,
    );
  }
  const args: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const v = values[name];
    if (spec.type === 'boolean') args[name] = v === true;
    else {
      const raw = typeof v === 'string' ? v : spec.default;
      args[name] = raw === undefined ? undefined : convert(name, spec, raw);
    }
  }
  return { args: args as Args<T>, positionals: parsed.positionals, help: false };
}

/** The --help text: the usage line, the script's description, then one line per option. */
export function helpText(script: Pick<Script<OptionTable>, 'usage' | 'about' | 'options'>): string {
  const rows = Object.entries(script.options).map(([name, s]) => {
    const left = `--${name}${s.type === 'boolean' ? '' : ` ${s.type === 'number' ? 'N' : s.type === 'numbers' ? 'N,N…' : s.type === 'list' ? 'A,B…' : 'VALUE'}`}`;
    const extra =
      s.type === 'boolean'
        ? ''
        : `${s.choices !== undefined ? ` (${s.choices.join(' | ')})` : ''}${s.default !== undefined ? ` [default: ${s.default}]` : ''}`;
    return { left, right: `${s.help}${extra}` };
  });
  const width = Math.max(...rows.map((r) => r.left.length), '--help'.length);
  return [
    `usage: ${script.usage}`,
    ...(script.about === undefined ? [] : ['', script.about.trim()]),
    '',
    'options:',
    ...rows.map((r) => `  ${r.left.padEnd(width)}  ${r.right}`),
    `  ${'--help'.padEnd(width)}  this text`,
    '',
  ].join('\n');
}

// ───────────────────────────── time ─────────────────────────────

/** The overall time budget of a run (Infinity seconds: none). */
export class TimeLimit {
  constructor(
    readonly seconds: number,
    readonly startedMs: number,
    now: () => number = Date.now,
  ) {
    this.#now = now;
  }

  readonly #now: () => number;

  elapsedS(): number {
    return (this.#now() - this.startedMs) / 1000;
  }

  leftS(): number {
    return this.seconds - this.elapsedS();
  }

  /** Throws BENCH_ERR_TIME_LIMIT once the budget is spent: for scripts that stop between steps. */
  check(): void {
    if (this.leftS() < 0) throw new BenchError('BENCH_ERR_TIME_LIMIT', `over --max-total-s ${this.seconds}`);
  }
}

/** `[  12 s] message`: seconds since `startedMs`, for progress lines. */
export function elapsedLog(
  startedMs: number,
  write: (line: string) => void,
  now: () => number = Date.now,
): (s: string) => void {
  return (s) => write(`[${((now() - startedMs) / 1000).toFixed(0).padStart(4)} s] ${s}`);
}

/** A start time as it appears in output file names: 2025-01-31T12-00-00-000Z. */
export function fileStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[:.]/g, '-');
}

// ───────────────────────────── quiet machine ─────────────────────────────

/**
 * Waits for the 1-minute load average to drop below `threshold` before a measurement: at most
 * `perWaitS` each time and `budgetS` over the whole run, so a busy machine delays a run by a
 * bounded amount and the script then measures anyway (and says so, from the QuietCheck).
 */
export interface QuietGateOptions {
  readonly threshold: number;
  readonly perWaitS: number;
  readonly budgetS?: number;
  readonly log: (s: string) => void;
  /** For tests: instead of waitForQuiet. */
  readonly wait?: (threshold: number, maxWaitS: number, log: (s: string) => void) => Promise<QuietCheck>;
}

export class QuietGate {
  #spentS = 0;

  readonly #o: QuietGateOptions;

  constructor(o: QuietGateOptions) {
    this.#o = o;
  }

  get threshold(): number {
    return this.#o.threshold;
  }

  /** Seconds waited so far. */
  get spentS(): number {
    return this.#spentS;
  }

  /** `label` prefixes the log line ("<label>: load … waiting"). */
  async wait(label?: string): Promise<QuietCheck> {
    const budget = Math.max(0, Math.min(this.#o.perWaitS, (this.#o.budgetS ?? Infinity) - this.#spentS));
    const log = label === undefined ? this.#o.log : (s: string) => this.#o.log(`${label}: ${s}`);
    const q = await (this.#o.wait ?? waitForQuiet)(this.#o.threshold, budget, log);
    this.#spentS += q.waitedS;
    return q;
  }
}

// ───────────────────────────── results ─────────────────────────────

export interface Publication {
  /** The `## <heading>` section of bench/RESULTS.md this script owns. */
  readonly heading: string;
  readonly body: string;
  /** Replace the section (else leave RESULTS.md alone). */
  readonly write: boolean;
  /** What goes into RESULTS.md when it differs from the run's summary (e.g. hand-written notes kept). */
  readonly resultsBody?: string;
  /** Why not, said when `write` is false (nothing is said without it). */
  readonly skipped?: string;
  /** The run's own directory: summary.md (and results.json with `json`) are written there either way. */
  readonly runDir?: string;
  readonly json?: unknown;
  readonly log: (s: string) => void;
  /** For tests: another RESULTS.md. */
  readonly resultsFile?: string;
}

/** The common end of a benchmark: its run files, then its RESULTS.md section or why not. */
export function publishResults(p: Publication): void {
  let summary: string | undefined;
  if (p.runDir !== undefined) {
    if (p.json !== undefined) writeFileSync(path.join(p.runDir, 'results.json'), JSON.stringify(p.json, null, 2));
    summary = path.join(p.runDir, 'summary.md');
    writeFileSync(summary, `## ${p.heading}\n\n${p.body}\n`);
  }
  if (p.write) {
    writeResultsSection(p.heading, p.resultsBody ?? p.body, p.resultsFile);
    p.log(`bench/RESULTS.md: ## ${p.heading} updated`);
  } else if (p.skipped !== undefined) {
    p.log(
      `bench/RESULTS.md left alone (${p.skipped})${summary === undefined ? '' : `; summary in ${path.relative(REPO_ROOT, summary)}`}`,
    );
  }
}

// ───────────────────────────── running a script ─────────────────────────────

export interface Run {
  readonly startedMs: number;
  /** {@link fileStamp} of the start. */
  readonly stamp: string;
  readonly positionals: readonly string[];
  /** The budget from the script's `timeLimit` (Infinity without one). */
  readonly limit: TimeLimit;
  /**
   * Synchronous cleanup that must happen however the process ends (done, failed, over the
   * time limit, Ctrl-C or SIGTERM): the first call makes SIGINT and SIGTERM exit (130, 143).
   */
  onExit(fn: () => void): void;
}

export interface Script<T extends OptionTable> {
  /** For messages: "<name>: exceeded --max-total-s 600; stopping". */
  readonly name: string;
  /** The command line for --help, e.g. `sudo node --import tsx bench/dhcp.ts [options]`. */
  readonly usage: string;
  /** What it measures, for --help. */
  readonly about?: string;
  readonly options: T;
  /** Names of required positional arguments. */
  readonly positionals?: readonly string[];
  /**
   * The overall time limit for these arguments. `stop: 'exit'` ends the process with code 2 when
   * it runs out (exit handlers such as the lab's then clean up); `stop: 'check'` only makes
   * `run.limit.check()` throw, for scripts that stop between steps themselves.
   */
  readonly timeLimit?: {
    readonly seconds: (args: Args<T>) => number;
    readonly stop: 'exit' | 'check';
    readonly note?: string;
  };
  /** 'exit' (default): exit 0 when main resolves. 'stay': a server that runs until it is signalled. */
  readonly afterMain?: 'exit' | 'stay';
  readonly main: (args: Args<T>, run: Run) => Promise<void> | void;
}

export function defineScript<const T extends OptionTable>(script: Script<T>): Script<T> {
  return script;
}

/** What run() touches of the process, replaceable in tests. */
export interface Host {
  readonly argv: readonly string[];
  readonly now: () => number;
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly exit: (code: number) => void;
  readonly onProcessExit: (fn: () => void) => void;
  readonly onSignal: (signal: 'SIGINT' | 'SIGTERM', fn: () => void) => void;
}

const processHost = (): Host => ({
  argv: process.argv.slice(2),
  now: Date.now,
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  exit: (code) => process.exit(code),
  onProcessExit: (fn) => void process.on('exit', fn),
  onSignal: (signal, fn) => void process.on(signal, fn),
});

/**
 * Parses the arguments, arms the time limit, runs `main` and exits: 0 when it resolves, 1 when
 * it throws or the arguments are wrong, 2 at the time limit. --help prints the options and exits 0.
 */
export async function run<T extends OptionTable>(script: Script<T>, host: Host = processHost()): Promise<void> {
  const cleanups: (() => void)[] = [];
  let exiting = false;
  const cleanUp = (): void => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch (err) {
        host.err(`${script.name}: cleanup failed: ${inspect(err)}\n`);
      }
    }
  };
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    cleanUp();
    host.exit(code);
  };

  let parsed: Parsed<T>;
  try {
    parsed = parseOptions(script.options, host.argv, script.positionals);
  } catch (err) {
    host.err(`${script.name}: ${(err as Error).message} (--help lists the options)\n`);
    return exit(1);
  }
  if (parsed.help) {
    host.out(helpText(script));
    return exit(0);
  }

  const startedMs = host.now();
  const seconds = script.timeLimit?.seconds(parsed.args) ?? Infinity;
  const limit = new TimeLimit(seconds, startedMs, host.now);
  let timer: NodeJS.Timeout | undefined;
  if (script.timeLimit?.stop === 'exit' && Number.isFinite(seconds)) {
    timer = setTimeout(() => {
      host.err(
        `${script.name}: exceeded --max-total-s ${seconds}; stopping${script.timeLimit?.note === undefined ? '' : ` (${script.timeLimit.note})`}\n`,
      );
      exit(2);
    }, seconds * 1000);
    timer.unref();
  }
  const runCtx: Run = {
    startedMs,
    stamp: fileStamp(startedMs),
    positionals: parsed.positionals,
    limit,
    onExit: (fn) => {
      if (cleanups.length === 0 && !exiting) {
        host.onProcessExit(cleanUp);
        host.onSignal('SIGINT', () => exit(130));
        host.onSignal('SIGTERM', () => exit(143));
      }
      cleanups.push(fn);
    },
  };
  try {
    await script.main(parsed.args, runCtx);
  } catch (err) {
    clearTimeout(timer);
    host.err(`${script.name}: ${inspect(err)}\n`);
    return exit(1);
  }
  clearTimeout(timer);
  if (script.afterMain !== 'stay') exit(0);
}

/** True when `moduleUrl` is the script node was started with (process.argv[1]). */
export function isEntry(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  if (argv1 === undefined) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(argv1);
  } catch {
    return false;
  }
}

/** The one top-level statement of a script: run it when it is the entry point, else nothing. */
export function runIfEntry<T extends OptionTable>(moduleUrl: string, script: Script<T>): void {
  if (isEntry(moduleUrl)) void run(script);
}
