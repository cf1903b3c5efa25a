/**
 * Runs metalboot itself (src/main.ts through tsx) inside a lab namespace, and waits for it to
 * be ready. The process is tracked by the lab, so lab.close() stops it.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../lab/netns.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface MetalbootProcess {
  readonly child: ChildProcess;
  /** Everything it has logged so far (pino JSON lines), parsed. */
  logs(): Record<string, unknown>[];
  /** Resolves with the first log line matching, polling; rejects after timeoutMs. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILL (a crash) or SIGTERM (a clean stop), resolving when it has exited. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

export interface StartOptions {
  /** Environment on top of the test's own (a pod's env, say). */
  readonly env?: Record<string, string>;
  /** A command that execs node, e.g. `['setpriv', '--bounding-set=-all,+net_bind_service']`. */
  readonly wrapper?: readonly string[];
}

export async function startMetalboot(
  lab: Lab,
  ns: string,
  args: readonly string[],
  options: StartOptions = {},
): Promise<MetalbootProcess> {
  const node = [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts'), ...args];
  const [cmd, ...rest] = [...(options.wrapper ?? []), ...node];
  const child = lab.spawn(ns, cmd!, rest, {
    cwd: REPO_ROOT,
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const logs = (): Record<string, unknown>[] => {
    const out: Record<string, unknown>[] = [];
    for (const line of lab.output(child).stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line still being written
      }
    }
    return out;
  };
  const waitForLog = async (match: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs().find(match);
      if (hit !== undefined) return hit;
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `metalboot exited (${child.exitCode ?? child.signalCode}):\n${lab.output(child).stdout}\n${lab.output(child).stderr}`.slice(
            0,
            4000,
          ),
        );
      }
      if (Date.now() > deadline)
        throw new Error(`log line not seen within ${timeoutMs} ms:\n${lab.output(child).stdout.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitForLog((l) => l.msg === 'ready', 30_000);
  const stop = (signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM') =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      // `ip netns exec` (and the wrapper) exec node, so the child pid is metalboot itself.
      child.kill(signal);
    });
  return { child, logs, waitForLog, stop };
}
