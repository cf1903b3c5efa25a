import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BenchError,
  defineOptions,
  elapsedLog,
  fileStamp,
  helpText,
  isEntry,
  parseOptions,
  publishResults,
  QuietGate,
  run,
  TimeLimit,
  type Host,
  type OptionTable,
  type Script,
} from './harness.js';

const OPTIONS = defineOptions({
  quick: { type: 'boolean', help: 'short run' },
  servers: { type: 'list', help: 'servers', default: 'metalboot,kea', choices: ['metalboot', 'kea', 'dnsmasq'] },
  runs: { type: 'number', help: 'runs per point' },
  sizes: { type: 'numbers', help: 'sizes', default: '1000,10000' },
  out: { type: 'string', help: 'output directory', default: '/tmp/x' },
});

const usage = (argv: string[], positionals?: string[]): string => {
  try {
    parseOptions(OPTIONS, argv, positionals);
  } catch (err) {
    expect(err).toBeInstanceOf(BenchError);
    expect((err as BenchError).code).toBe('BENCH_ERR_USAGE');
    return (err as BenchError).message;
  }
  throw new Error('parsed');
};

describe('parseOptions', () => {
  it('gives defaults as typed values, undefined for a value without one, false for an absent flag', () => {
    expect(parseOptions(OPTIONS, []).args).toEqual({
      quick: false,
      servers: ['metalboot', 'kea'],
      runs: undefined,
      sizes: [1000, 10000],
      out: '/tmp/x',
    });
  });

  it('converts what is given by the option type', () => {
    const { args } = parseOptions(OPTIONS, [
      '--quick',
      '--servers',
      'dnsmasq',
      '--runs',
      '5',
      '--sizes=1,2,3',
      '--out',
      'o',
    ]);
    expect(args).toEqual({ quick: true, servers: ['dnsmasq'], runs: 5, sizes: [1, 2, 3], out: 'o' });
  });

  it.each([
    ['an unknown option', ['--nope'], /nope/],
    [
      'a value outside the choices',
      ['--servers', 'metalboot,isc'],
      /--servers: "isc" is not one of metalboot, kea, dnsmasq/,
    ],
    ['a number that is not one', ['--runs', 'three'], /--runs: "three" is not a number/],
    ['an empty element of a number list', ['--sizes', '1,,2'], /--sizes: "" is not a number/],
    ['a missing value', ['--runs'], /runs/],
    ['a positional the script does not take', ['extra'], /extra/],
  ])('rejects %s', (_what, argv, message) => {
    expect(usage(argv)).toMatch(message);
  });

  it('requires exactly the declared positionals', () => {
    expect(parseOptions(OPTIONS, ['plan.json', 'result.json'], ['PLAN', 'RESULT']).positionals).toEqual([
      'plan.json',
      'result.json',
    ]);
    expect(usage(['plan.json'], ['PLAN', 'RESULT'])).toBe('expected 2 arguments (PLAN RESULT), got 1');
  });

  it('recognises --help and -h before checking anything else', () => {
    expect(parseOptions(OPTIONS, ['--help']).help).toBe(true);
    expect(parseOptions(OPTIONS, ['-h'], ['PLAN']).help).toBe(true);
  });
});

describe('helpText', () => {
  it('lists every option with its help, choices and default', () => {
    const text = helpText({ usage: 'node bench/x.ts [options]', about: 'Measures x.', options: OPTIONS });
    expect(text.split('\n')).toEqual([
      'usage: node bench/x.ts [options]',
      '',
      'Measures x.',
      '',
      'options:',
      '  --quick         short run',
      '  --servers A,B…  servers (metalboot | kea | dnsmasq) [default: metalboot,kea]',
      '  --runs N        runs per point',
      '  --sizes N,N…    sizes [default: 1000,10000]',
      '  --out VALUE     output directory [default: /tmp/x]',
      '  --help          this text',
      '',
    ]);
  });
});

describe('TimeLimit', () => {
  it('counts elapsed and remaining seconds on its clock and throws once spent', () => {
    let now = 1_000;
    const limit = new TimeLimit(10, 1_000, () => now);
    now = 4_500;
    expect(limit.elapsedS()).toBe(3.5);
    expect(limit.leftS()).toBe(6.5);
    expect(() => limit.check()).not.toThrow();
    now = 11_001;
    expect(() => limit.check()).toThrow(
      expect.objectContaining({ code: 'BENCH_ERR_TIME_LIMIT', message: 'over --max-total-s 10' }),
    );
  });

  it('never runs out without a limit', () => {
    const limit = new TimeLimit(Infinity, 0, () => 1e12);
    expect(limit.leftS()).toBe(Infinity);
    expect(() => limit.check()).not.toThrow();
  });
});

describe('elapsedLog and fileStamp', () => {
  it('prefixes lines with whole seconds since the start', () => {
    const lines: string[] = [];
    elapsedLog(
      10_000,
      (l) => lines.push(l),
      () => 22_600,
    )('sweep');
    expect(lines).toEqual(['[  13 s] sweep']);
  });

  it('makes a start time safe for file names', () => {
    expect(fileStamp(Date.UTC(2025, 0, 31, 12, 3, 4, 5))).toBe('2025-01-31T12-03-04-005Z');
  });
});

describe('QuietGate', () => {
  it('waits at most perWaitS each time and budgetS in all, prefixing the label', async () => {
    const budgets: number[] = [];
    const lines: string[] = [];
    const gate = new QuietGate({
      threshold: 1,
      perWaitS: 20,
      budgetS: 30,
      log: (s) => lines.push(s),
      wait: async (threshold, maxWaitS, log) => {
        budgets.push(maxWaitS);
        log(`load 2 ≥ ${threshold}`);
        return { load1: 2, waitedS: maxWaitS, quiet: false };
      },
    });
    await gate.wait('sweep a');
    await gate.wait('sweep b');
    await gate.wait();
    expect(budgets).toEqual([20, 10, 0]);
    expect(gate.spentS).toBe(30);
    expect(lines).toEqual(['sweep a: load 2 ≥ 1', 'sweep b: load 2 ≥ 1', 'load 2 ≥ 1']);
  });
});

describe('publishResults', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the run files and replaces the section when asked', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bench-harness-'));
    const resultsFile = path.join(dir, 'RESULTS.md');
    writeFileSync(resultsFile, '# Benchmark results\n\n## DHCP\n\nold\n\n## TFTP\n\nkept\n');
    const lines: string[] = [];
    publishResults({
      heading: 'DHCP',
      body: 'new',
      write: true,
      runDir: dir,
      json: { a: 1 },
      log: (s) => lines.push(s),
      resultsFile,
    });
    expect(readFileSync(resultsFile, 'utf8')).toBe('# Benchmark results\n\n## DHCP\n\nnew\n\n## TFTP\n\nkept\n');
    expect(readFileSync(path.join(dir, 'summary.md'), 'utf8')).toBe('## DHCP\n\nnew\n');
    expect(JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'))).toEqual({ a: 1 });
    expect(lines).toEqual(['bench/RESULTS.md: ## DHCP updated']);
  });

  it('leaves RESULTS.md alone and says why', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bench-harness-'));
    const resultsFile = path.join(dir, 'RESULTS.md');
    writeFileSync(resultsFile, 'as it was\n');
    const lines: string[] = [];
    publishResults({
      heading: 'DHCP',
      body: 'new',
      write: false,
      skipped: '--no-results',
      runDir: dir,
      log: (s) => lines.push(s),
      resultsFile,
    });
    expect(readFileSync(resultsFile, 'utf8')).toBe('as it was\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bench\/RESULTS\.md left alone \(--no-results\); summary in .*summary\.md$/);
  });
});

describe('run', () => {
  afterEach(() => vi.useRealTimers());

  function fakeHost(
    argv: string[],
  ): Host & { codes: number[]; stdout: string[]; stderr: string[]; signals: string[]; exitHandlers: (() => void)[] } {
    const h = {
      argv,
      now: () => Date.now(),
      codes: [] as number[],
      stdout: [] as string[],
      stderr: [] as string[],
      signals: [] as string[],
      exitHandlers: [] as (() => void)[],
      out: (s: string) => void h.stdout.push(s),
      err: (s: string) => void h.stderr.push(s),
      exit: (code: number) => void h.codes.push(code),
      onProcessExit: (fn: () => void) => void h.exitHandlers.push(fn),
      onSignal: (sig: string) => void h.signals.push(sig),
    };
    return h;
  }

  const script = <T extends OptionTable>(s: Partial<Script<T>> & Pick<Script<T>, 'options' | 'main'>): Script<T> => ({
    name: 'x bench',
    usage: 'node bench/x.ts',
    ...s,
  });

  it('passes the parsed arguments to main and exits 0 when it resolves', async () => {
    const host = fakeHost(['--runs', '2']);
    let seen: unknown;
    await run(
      script({
        options: OPTIONS,
        main: (args) => {
          seen = args.runs;
        },
      }),
      host,
    );
    expect(seen).toBe(2);
    expect(host.codes).toEqual([0]);
  });

  it('prints the error and exits 1 when main throws', async () => {
    const host = fakeHost([]);
    await run(script({ options: OPTIONS, main: () => Promise.reject(new Error('no perfdhcp')) }), host);
    expect(host.codes).toEqual([1]);
    expect(host.stderr.join('')).toContain('x bench: Error: no perfdhcp');
  });

  it('exits 1 on bad arguments without running main, and 0 with the options for --help', async () => {
    const main = vi.fn();
    const bad = fakeHost(['--bogus']);
    await run(script({ options: OPTIONS, main }), bad);
    expect(bad.codes).toEqual([1]);
    expect(bad.stderr.join('')).toMatch(/^x bench: .*bogus.*\(--help lists the options\)\n$/);
    const help = fakeHost(['--help']);
    await run(script({ options: OPTIONS, main }), help);
    expect(help.codes).toEqual([0]);
    expect(help.stdout.join('')).toContain('--servers A,B…');
    expect(main).not.toHaveBeenCalled();
  });

  it('stays up after main for a server', async () => {
    const host = fakeHost([]);
    await run(script({ options: {}, main: () => undefined, afterMain: 'stay' }), host);
    expect(host.codes).toEqual([]);
  });

  it('stops with 2 at a hard time limit, running the exit cleanups first', async () => {
    vi.useFakeTimers();
    const host = fakeHost(['--runs', '30']);
    const order: string[] = [];
    void run(
      script({
        options: OPTIONS,
        timeLimit: { seconds: (a) => a.runs ?? 1, stop: 'exit', note: 'the lab removes its namespaces' },
        main: (_args, r) => {
          r.onExit(() => order.push('cleanup'));
          return new Promise<void>(() => undefined);
        },
      }),
      { ...host, exit: (code) => void order.push(`exit ${code}`) },
    );
    await vi.advanceTimersByTimeAsync(29_999);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(order).toEqual(['cleanup', 'exit 2']);
    expect(host.stderr.join('')).toBe(
      'x bench: exceeded --max-total-s 30; stopping (the lab removes its namespaces)\n',
    );
    expect(host.signals).toEqual(['SIGINT', 'SIGTERM']);
  });

  it('leaves the time limit to main with stop: check', async () => {
    vi.useFakeTimers();
    const host = fakeHost([]);
    let left = 0;
    const done = run(
      script({
        options: {},
        timeLimit: { seconds: () => 5, stop: 'check' },
        main: async (_a, r) => {
          await new Promise((resolve) => setTimeout(resolve, 6_000));
          left = r.limit.leftS();
          r.limit.check();
        },
      }),
      host,
    );
    await vi.advanceTimersByTimeAsync(6_000);
    await done;
    expect(left).toBeCloseTo(-1, 5);
    expect(host.codes).toEqual([1]);
    expect(host.stderr.join('')).toContain('over --max-total-s 5');
  });
});

describe('isEntry', () => {
  it('is true only for the script node was started with', () => {
    const self = new URL(import.meta.url);
    expect(isEntry(self.href, self.pathname)).toBe(true);
    expect(isEntry(pathToFileURL(path.join(path.dirname(self.pathname), 'stats.ts')).href, self.pathname)).toBe(false);
    expect(isEntry(self.href, undefined)).toBe(false);
  });

  it('is false for a script that imports the harness under vitest', () => {
    expect(isEntry(import.meta.url)).toBe(false);
  });
});
