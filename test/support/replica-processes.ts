/**
 * metalboot processes (src/main.ts through tsx) on this host, without network namespaces: for
 * tests of several replicas whose listeners all bind loopback. Every process started is tracked
 * until killAll() (SIGKILL, waited for), which a test's afterEach calls, failed or not.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './metalboot-process.js';

export type LogLine = Record<string, unknown>;

export interface ReplicaProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** The pino JSON lines so far, parsed (a line still being written is skipped). */
  logs(): LogLine[];
  /** The first log line with this message (and these fields), if any yet. */
  logged(msg: string, fields?: Readonly<Record<string, unknown>>): LogLine | undefined;
  /** The identity this process elected under, once it logged one. */
  identity(): string | undefined;
  /** kill -9, resolving once it has exited. */
  kill(): Promise<void>;
}

export class ReplicaProcesses {
  readonly #children: ChildProcess[] = [];

  /** Starts `metalboot <args>` with only PATH in its environment. */
  start(args: readonly string[]): ReplicaProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString('utf8');
    });
    child.stderr?.on('data', (b: Buffer) => {
      out += b.toString('utf8');
    });
    const logs = (): LogLine[] => {
      const lines: LogLine[] = [];
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          // a line still being written
        }
      }
      return lines;
    };
    const logged = (msg: string, fields: Readonly<Record<string, unknown>> = {}): LogLine | undefined =>
      logs().find((l) => l['msg'] === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
    const identity = (): string | undefined => {
      const l = logs().find((l) => l['component'] === 'leader-election' && typeof l['identity'] === 'string');
      return l?.['identity'] as string | undefined;
    };
    return { child, output: () => out, logs, logged, identity, kill: () => killed(child) };
  }

  async killAll(): Promise<void> {
    await Promise.all(this.#children.splice(0).map(killed));
  }
}

async function killed(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await exited;
}

/**
 * `dir/metalboot.yaml` for replicas on loopback with no DHCP and no TFTP (HTTP on a port of its
 * own each, logging at debug), plus `extra` YAML lines; returns its path.
 */
export async function writeReplicaConfig(dir: string, extra: readonly string[] = []): Promise<string> {
  const config = path.join(dir, 'metalboot.yaml');
  await writeFile(
    config,
    [
      'dhcp: { enabled: false, serverIP: auto }',
      `tftp: { listen: "", root: ${JSON.stringify(dir)} }`,
      'http: { listen: 127.0.0.1:0 }',
      ...extra,
      'log: { level: debug }',
      '',
    ].join('\n'),
  );
  return config;
}
