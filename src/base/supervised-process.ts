/**
 * A helper program metalboot runs beside itself (socat for one interface's DHCP datagrams,
 * radvd for router advertisements), supervised: started and checked, restarted when it dies,
 * stopped with metalboot. Extracted from the DeviceFeed's socat supervision so both helpers
 * share one.
 *
 * - start() spawns the program and resolves once `isReady()` (polled every 20 ms) says it is up;
 *   it rejects with `startError(failure)` (the program killed) when the program is missing,
 *   exits first, or is not ready within `readyTimeoutMs`. start() never schedules a restart.
 * - A program that dies after it was ready is logged at error with its exit code and the tail of
 *   its stderr, and started again after a back-off (`restartDelayMs`, doubling to
 *   `maxRestartDelayMs`; a program that ran that long starts over from the first delay). A
 *   restart that fails is retried the same way, unless `isPermanent(failure)` says no restart
 *   can mend it (the program is missing, it lacks a capability): then it stops, and
 *   `onGiveUp` is told.
 * - close() stops it: SIGTERM, SIGKILL after `stopTimeoutMs`.
 * - If metalboot exits without close() (process.exit, an uncaught exception), an 'exit' hook
 *   SIGKILLs it. What happens after a SIGKILL of metalboot is each program's own affair (socat:
 *   ECONNREFUSED on its connected socket; radvd: SIGPIPE on its next log line); see their files.
 *
 * stdin and stdout are /dev/null; stderr is a pipe, read line by line (`onStderrLine`) and its
 * last 2 KiB kept for logs and errors.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';

/** Why a start did not come up. */
export interface StartFailure {
  /** `spawn`: the program could not be run (see `spawnError`); `exit`: it ended first; `timeout`: never ready. */
  readonly kind: 'spawn' | 'exit' | 'timeout';
  readonly command: string;
  readonly spawnError: NodeJS.ErrnoException | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The tail of its stderr, trimmed; "" when it wrote nothing. */
  readonly stderr: string;
  readonly readyTimeoutMs: number;
}

export interface SupervisedProcessOptions {
  /** The executable: a path, or a name found on PATH. */
  readonly command: string;
  /** The arguments of every start. */
  readonly args: readonly string[];
  /** Its name in log messages ("socat exited; restarting"). */
  readonly program: string;
  readonly logger: Logger;
  /** Polled from spawn until true: the program is up. */
  readonly isReady: () => boolean;
  /** The error a failed start rejects with (and restarts log). */
  readonly startError: (failure: StartFailure) => Error;
  /** A failure no restart can mend: restarts stop. Default: none is. */
  readonly isPermanent?: (failure: StartFailure) => boolean;
  /** Every complete line of its stderr, without the newline. */
  readonly onStderrLine?: (line: string) => void;
  /** Called when it has died and restarts have stopped for good (a permanent failure). */
  readonly onGiveUp?: (err: Error) => void;
  /** Called after a restart came up. */
  readonly onRestarted?: (pid: number | undefined) => void;
  /** Called when a running process ends (before any restart), with its exit. */
  readonly onExit?: (exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null }) => void;
  /** How long it may take to be ready. Default 5000 ms. */
  readonly readyTimeoutMs?: number;
  /** First restart delay, doubling up to maxRestartDelayMs. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** Default 30 000 ms. */
  readonly maxRestartDelayMs?: number;
  /** How long close() waits after SIGTERM before SIGKILL. Default 2000 ms. */
  readonly stopTimeoutMs?: number;
}

/** `starting` (spawned, not ready yet), `running`, `down` (dead, a restart is due), `stopped` (never started, closed, or given up). */
export type SupervisedState = 'starting' | 'running' | 'down' | 'stopped';

/** The last bytes of stderr kept for logs and errors. */
const STDERR_TAIL = 2048;
/** A line longer than this is passed on in pieces. */
const MAX_LINE = 8192;
const PROBE_INTERVAL_MS = 20;

interface Child {
  readonly proc: ChildProcess;
  readonly startedAt: number;
  readonly closed: Promise<void>;
  stderr: string;
  partial: string;
  spawnError: NodeJS.ErrnoException | undefined;
  exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined;
  ready: boolean;
}

export class SupervisedProcess {
  readonly #o: SupervisedProcessOptions;
  readonly #log: Logger;
  #child: Child | undefined;
  #closing = false;
  #gaveUp = false;
  #restartDelayMs: number;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;
  readonly #killOnExit = (): void => {
    this.#child?.proc.kill('SIGKILL');
  };

  constructor(o: SupervisedProcessOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#restartDelayMs = o.restartDelayMs ?? 1000;
  }

  get state(): SupervisedState {
    const c = this.#child;
    if (c !== undefined && c.exit === undefined && c.spawnError === undefined) return c.ready ? 'running' : 'starting';
    if (this.#restartTimer !== undefined) return 'down';
    return 'stopped';
  }

  /** Its process id while it runs. */
  get pid(): number | undefined {
    const c = this.#child;
    return c !== undefined && c.exit === undefined ? c.proc.pid : undefined;
  }

  /** Restarts after a death so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Whether restarts stopped on a permanent failure. */
  get gaveUp(): boolean {
    return this.#gaveUp;
  }

  /** Starts it and resolves once it is ready; rejects (the process killed) if it is not. */
  async start(): Promise<void> {
    this.#closing = false;
    this.#gaveUp = false;
    process.on('exit', this.#killOnExit);
    try {
      await this.#spawn();
    } catch (err) {
      this.#child = undefined;
      process.off('exit', this.#killOnExit);
      throw err;
    }
  }

  #spawn(): Promise<void> {
    const o = this.#o;
    const proc = spawn(o.command, [...o.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const child: Child = {
      proc,
      startedAt: Date.now(),
      closed: new Promise((resolve) => proc.once('close', () => resolve())),
      stderr: '',
      partial: '',
      spawnError: undefined,
      exit: undefined,
      ready: false,
    };
    this.#child = child;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      child.stderr = (child.stderr + s).slice(-STDERR_TAIL);
      this.#lines(child, s);
    });
    proc.on('error', (err) => {
      child.spawnError = err;
    });
    // 'close', not 'exit': by then the stderr pipe is drained, so the tail is complete.
    proc.once('close', (code, signal) => {
      if (child.partial !== '') this.#o.onStderrLine?.(child.partial);
      child.partial = '';
      child.exit = { code, signal };
      if (child.ready) this.#onDied(child);
    });
    const readyTimeoutMs = o.readyTimeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + readyTimeoutMs;
      const tick = (): void => {
        if (child.exit !== undefined || child.spawnError !== undefined) {
          reject(o.startError(this.#failure(child, child.spawnError !== undefined ? 'spawn' : 'exit')));
          return;
        }
        if (o.isReady()) {
          child.ready = true;
          resolve();
          return;
        }
        if (Date.now() >= deadline) {
          proc.kill('SIGKILL');
          const failure = this.#failure(child, 'timeout');
          void settled(child.closed, 2000).then(() => reject(o.startError(failure)));
          return;
        }
        setTimeout(tick, PROBE_INTERVAL_MS);
      };
      tick();
    });
  }

  #lines(child: Child, chunk: string): void {
    const each = this.#o.onStderrLine;
    if (each === undefined) return;
    const parts = (child.partial + chunk).split('\n');
    child.partial = parts.pop() ?? '';
    if (child.partial.length > MAX_LINE) {
      parts.push(child.partial);
      child.partial = '';
    }
    for (const line of parts) each(line);
  }

  #failure(child: Child, kind: StartFailure['kind']): StartFailure {
    return {
      kind,
      command: this.#o.command,
      spawnError: child.spawnError,
      code: child.exit?.code ?? null,
      signal: child.exit?.signal ?? null,
      stderr: child.stderr.trim(),
      readyTimeoutMs: this.#o.readyTimeoutMs ?? 5000,
    };
  }

  #onDied(child: Child): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#o.onExit?.(child.exit!);
    if (this.#closing) return;
    const max = this.#o.maxRestartDelayMs ?? 30_000;
    // A program that ran a while starts over from the first delay.
    if (Date.now() - child.startedAt >= max) this.#restartDelayMs = this.#o.restartDelayMs ?? 1000;
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(delay * 2, max);
    this.#log.error(
      {
        pid: child.proc.pid,
        code: child.exit?.code,
        signal: child.exit?.signal,
        stderr: child.stderr.trim(),
        restartInMs: delay,
      },
      `${this.#o.program} exited; restarting`,
    );
    this.#restartTimer = setTimeout(() => this.#restart(), delay);
  }

  #restart(): void {
    this.#restartTimer = undefined;
    if (this.#closing) return;
    this.#restarts++;
    this.#spawn().then(
      () => {
        this.#log.info({ pid: this.pid }, `${this.#o.program} restarted`);
        this.#o.onRestarted?.(this.pid);
      },
      (err: unknown) => {
        const failed = this.#child;
        this.#child = undefined;
        if (this.#closing) return;
        const e = err as Error;
        if (failed !== undefined && this.#o.isPermanent?.(this.#failure(failed, this.#kindOf(failed))) === true) {
          this.#gaveUp = true;
          process.off('exit', this.#killOnExit);
          this.#log.error({ err: e }, `${this.#o.program} cannot run; not restarting`);
          this.#o.onGiveUp?.(e);
          return;
        }
        const delay = this.#restartDelayMs;
        this.#restartDelayMs = Math.min(delay * 2, this.#o.maxRestartDelayMs ?? 30_000);
        this.#log.error({ err: e, restartInMs: delay }, `${this.#o.program} restart failed`);
        this.#restartTimer = setTimeout(() => this.#restart(), delay);
      },
    );
  }

  #kindOf(child: Child): StartFailure['kind'] {
    if (child.spawnError !== undefined) return 'spawn';
    return child.exit !== undefined ? 'exit' : 'timeout';
  }

  /** Stops it (SIGTERM, then SIGKILL after stopTimeoutMs) and any restart that is due. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const child = this.#child;
    if (child !== undefined && child.exit === undefined && child.spawnError === undefined) {
      child.proc.kill('SIGTERM');
      if (!(await settled(child.closed, this.#o.stopTimeoutMs ?? 2000))) {
        this.#log.warn({ pid: child.proc.pid }, `${this.#o.program} did not stop in time; killing it`);
        child.proc.kill('SIGKILL');
        await settled(child.closed, 2000);
      }
    }
    this.#child = undefined;
    process.off('exit', this.#killOnExit);
  }
}

/** Whether `p` settled within `ms`. */
export async function settled(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const r = await Promise.race([p.then(() => true as const), timeout]);
  clearTimeout(timer);
  return r;
}
