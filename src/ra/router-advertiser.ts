/**
 * Router advertisements on the provisioning interface, sent by radvd, which this service
 * configures, starts, supervises and stops (docs/decisions/0011-router-advertisement.md).
 *
 * Why: iPXE configures IPv4 (DHCP) and IPv6 (router solicitation) together and waits for both;
 * on an IPv4-only network nobody answers, and every boot waits ~15 s. An advertisement with
 * router lifetime 0, no prefix and M=O=0 (radvd-config.ts, ANSWER_ONLY) answers at once and
 * changes no host's routing.
 *
 * Best effort: nothing here stops metalboot. start() never throws. When radvd cannot send,
 * start-up logs one warning that says why and how to fix it (IPv6 disabled on the interface, no
 * CAP_NET_RAW, radvd missing) and metalboot serves everything else; iPXE then waits as before.
 * /readyz always reports this check ok, with the status in its detail.
 *
 * - Start: the checks of preflight.ts, then radvd.conf and the pidfile in a directory of its own
 *   (mkdtemp under `runtimeDir`), then radvd in the foreground (radvdArgs), supervised by
 *   base/supervised-process.ts: up once radvd has written its pidfile ("radvd PID is N"),
 *   restarted with back-off when it dies, never restarted when it cannot run (missing, no
 *   capability).
 * - radvd's stderr is read line by line (radvd-log.ts): sends, solicitations and other routers
 *   become metrics; what an operator needs goes to metalboot's log, the chatter at trace.
 * - Another router on the link that advertises other M or O flags (radvd's RFC 4861 §6.2.7
 *   check): hosts that take the flags from the latest advertisement could stop or start
 *   DHCPv6 because of ours, so metalboot stops its advertisements and says so. A router that
 *   agrees (or metalboot's own replicas) changes nothing.
 * - Stop: SIGTERM (radvd sends a last advertisement, lifetime 0 like every other, and exits),
 *   SIGKILL after a bound; then any process still running with this configuration (radvd's
 *   privilege-separation child) is killed and the directory removed. On process.exit without
 *   close(), exit hooks kill radvd and remove the directory. After a SIGKILL of metalboot,
 *   radvd's next log line (it writes one before each send and on each packet received) meets
 *   the pipe nobody reads and SIGPIPE ends it before it sends anything; in a pod, the
 *   container's end takes it with it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MetalbootError } from '../base/errors.js';
import { LabelledCounter } from '../base/labelled-counter.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { settled, type StartFailure, SupervisedProcess } from '../base/supervised-process.js';
import { preflightMessage, raPreflight, type RaPreflightProblem, type ReadText } from './preflight.js';
import { ANSWER_ONLY, type RaContent, radvdArgs, renderRadvdConfig } from './radvd-config.js';
import { type RadvdLine, RadvdLogReader } from './radvd-log.js';

export const RA_STATUSES = [
  /** Preflight passed, radvd is starting (or has not reported the interface ready yet). */
  'starting',
  /** radvd runs and the interface is ready: advertisements go out. */
  'sending',
  /** radvd runs but cannot send on the interface yet (no link-local address, link down). */
  'interface-not-ready',
  /** radvd died; a restart is due. */
  'restarting',
  /** Another router disagrees on the M or O flag: metalboot stopped advertising. */
  'yielded',
  /** Preflight or radvd said it cannot send: see the start-up error. */
  'off',
  /** Not started, or closed. */
  'stopped',
] as const;
export type RaStatus = (typeof RA_STATUSES)[number];

/** Why metalboot sends no router advertisements. */
export type RaOffReason = RaPreflightProblem['kind'] | 'config' | 'runtime-dir' | 'radvd';

/** A process, for the sweep after close(). */
export interface ProcessInfo {
  readonly pid: number;
  readonly cmdline: string;
}

export interface RouterAdvertiserOptions {
  /** The provisioning interface. */
  readonly interface: string;
  /** MaxRtrAdvInterval (RFC 4861), 4–1800 s. */
  readonly maxIntervalSeconds: number;
  /** What the advertisements say. Default ANSWER_ONLY. */
  readonly content?: RaContent;
  /** The radvd executable. Default `radvd`, found on PATH. */
  readonly radvd?: string;
  /** Where radvd's own directory is made. Default os.tmpdir(). */
  readonly runtimeDir?: string;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Reads /proc files (tests). */
  readonly readText?: ReadText;
  /** The processes of this machine (tests). Default: /proc. */
  readonly processes?: () => readonly ProcessInfo[];
  readonly readyTimeoutMs?: number;
  readonly restartDelayMs?: number;
  readonly stopTimeoutMs?: number;
}

const READ_TEXT: ReadText = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

function procProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      out.push({ pid: Number(name), cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ') });
    } catch {
      // gone already
    }
  }
  return out;
}

const WAITING_FOR_INTERFACE = 'radvd runs and waits for the interface (up, with a link-local address)';

/** M and O: the flags whose disagreement could change what hosts do (RFC 4861 §6.2.7, RFC 4862). */
const YIELD_FIELDS: ReadonlySet<string> = new Set(['AdvManagedFlag', 'AdvOtherConfigFlag']);

export class RouterAdvertiser implements Service {
  readonly name = 'router-advertisements';
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: RouterAdvertiserOptions;
  readonly #log: Logger;
  readonly #read: ReadText;
  #status: RaStatus = 'stopped';
  #why = 'not started';
  #dir: string | undefined;
  #configPath = '';
  #radvd: SupervisedProcess | undefined;
  #reader = new RadvdLogReader();
  #pidSeen = false;
  #closing = false;
  readonly #routers = new Set<string>();
  readonly #sent: LabelledCounter<'multicast' | 'unicast'>;
  readonly #sendFailures: Counter;
  readonly #solicitations: Counter;
  readonly #answered: Counter;
  readonly #foreign: Counter;
  readonly #restarts: Counter;
  readonly #statusGauge: Gauge<'status'>;
  readonly #removeDirOnExit = (): void => {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
  };

  constructor(o: RouterAdvertiserOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'ra', interface: o.interface });
    this.#read = o.readText ?? READ_TEXT;
    const registers = [o.registry];
    this.#sent = new LabelledCounter({
      name: 'metalboot_ra_advertisements_sent_total',
      help: 'Router advertisements radvd sent on the provisioning interface, by destination (multicast: periodic and final; unicast: answers to solicitations)',
      labelNames: ['destination'],
      registers,
    });
    this.#sendFailures = new Counter({
      name: 'metalboot_ra_advertisement_send_failures_total',
      help: 'Router advertisements radvd could not send (sendmsg failed)',
      registers,
    });
    this.#solicitations = new Counter({
      name: 'metalboot_ra_solicitations_received_total',
      help: 'Router solicitations radvd received on the provisioning interface',
      registers,
    });
    this.#answered = new Counter({
      name: 'metalboot_ra_solicitations_answered_total',
      help: 'Router solicitations radvd answered (valid ones; invalid ones are only received)',
      registers,
    });
    this.#foreign = new Counter({
      name: 'metalboot_ra_foreign_advertisements_total',
      help: 'Router advertisements from other routers heard on the provisioning interface',
      registers,
    });
    this.#restarts = new Counter({
      name: 'metalboot_ra_radvd_restarts_total',
      help: 'Times radvd was started again after it died',
      registers,
    });
    this.#statusGauge = new Gauge({
      name: 'metalboot_ra_status',
      help: 'Router advertisements: 1 for the current status (sending, starting, interface-not-ready, restarting, yielded, off, stopped)',
      labelNames: ['status'],
      registers,
    });
    for (const d of ['multicast', 'unicast'] as const) this.#sent.inc(d, 0);
    this.#setStatus('stopped', 'not started');
    this.readiness = [
      {
        name: 'router-advertisements',
        // Never holds readiness back: metalboot serves without advertisements, only slower.
        check: () => ({ ok: true, detail: this.#detail() }),
      },
    ];
  }

  /** The current status and why (tests, /readyz). */
  get status(): { readonly status: RaStatus; readonly why: string; readonly pid: number | undefined } {
    return { status: this.#status, why: this.#why, pid: this.#radvd?.pid };
  }

  /** The radvd configuration file while it runs. */
  get configPath(): string | undefined {
    return this.#dir === undefined ? undefined : this.#configPath;
  }

  #detail(): string {
    const pid = this.#radvd?.pid;
    return `${this.#status} on ${this.#o.interface}${pid === undefined ? '' : ` (radvd pid ${pid})`}: ${this.#why}`;
  }

  #setStatus(status: RaStatus, why: string): void {
    this.#status = status;
    this.#why = why;
    for (const s of RA_STATUSES) this.#statusGauge.set({ status: s }, s === status ? 1 : 0);
  }

  async start(): Promise<void> {
    this.#closing = false;
    const iface = this.#o.interface;
    const problem = raPreflight(iface, this.#read);
    if (problem !== undefined) {
      this.#off(problem.kind, preflightMessage(problem, iface));
      return;
    }
    let content: string;
    try {
      content = renderRadvdConfig({
        ...(this.#o.content ?? ANSWER_ONLY),
        interface: iface,
        maxIntervalSeconds: this.#o.maxIntervalSeconds,
      });
    } catch (err) {
      this.#off('config', (err as Error).message);
      return;
    }
    try {
      this.#dir = mkdtempSync(path.join(this.#o.runtimeDir ?? tmpdir(), 'metalboot-radvd-'));
      this.#configPath = path.join(this.#dir, 'radvd.conf');
      // radvd refuses a configuration others may write.
      writeFileSync(this.#configPath, content, { mode: 0o600 });
    } catch (err) {
      this.#off('runtime-dir', `cannot write radvd's configuration: ${(err as Error).message}`);
      this.#removeDir();
      return;
    }
    process.on('exit', this.#removeDirOnExit);
    const radvd = this.#o.radvd ?? 'radvd';
    this.#radvd = new SupervisedProcess({
      command: radvd,
      args: radvdArgs({ configPath: this.#configPath, pidPath: path.join(this.#dir, 'radvd.pid') }),
      program: 'radvd',
      logger: this.#log,
      isReady: () => this.#pidSeen,
      startError: (f) => startError(radvd, f),
      isPermanent: (f) => permanent(f),
      onStderrLine: (line) => this.#onLines(this.#reader.read(line)),
      onExit: () => {
        this.#onLines(this.#reader.end());
        this.#reader = new RadvdLogReader();
        this.#pidSeen = false;
        if (!this.#closing && this.#status !== 'yielded') this.#setStatus('restarting', 'radvd exited');
      },
      // The status follows radvd's own lines ("<interface> is ready"), which may come first.
      onRestarted: () => this.#restarts.inc(),
      onGiveUp: (err) => this.#off('radvd', err.message),
      readyTimeoutMs: this.#o.readyTimeoutMs,
      restartDelayMs: this.#o.restartDelayMs,
      stopTimeoutMs: this.#o.stopTimeoutMs,
    });
    this.#setStatus('starting', 'radvd starting');
    try {
      await this.#radvd.start();
    } catch (err) {
      const e = err as MetalbootError;
      this.#radvd = undefined;
      this.#off('radvd', e.message, e.code);
      this.#removeDir();
      return;
    }
    this.#log.info({ pid: this.#radvd.pid, config: this.#configPath }, 'radvd started');
    // radvd sets an interface up once it has a link-local address and is up; until then it waits.
    if (this.#status === 'starting') this.#setStatus('starting', WAITING_FOR_INTERFACE);
  }

  /** Not sending, for good: one warning that says why, and metalboot goes on (slower boots, nothing broken). */
  #off(reason: RaOffReason, message: string, code?: string): void {
    this.#setStatus('off', message);
    this.#log.warn(
      { reason, code },
      `no router advertisements: ${message}; metalboot serves without them (iPXE waits ~15 s for IPv6 on every boot)`,
    );
  }

  #onLines(lines: readonly RadvdLine[]): void {
    for (const l of lines) this.#onLine(l);
  }

  #onLine(l: RadvdLine): void {
    switch (l.kind) {
      case 'sent':
        this.#sent.inc(l.multicast ? 'multicast' : 'unicast');
        this.#log.debug({ to: l.to }, 'router advertisement sent');
        return;
      case 'send-failed':
        this.#sendFailures.inc();
        this.#log.warn({ to: l.to, error: l.error }, 'router advertisement not sent');
        return;
      case 'solicitation':
        this.#solicitations.inc();
        this.#log.debug({ from: l.from }, 'router solicitation');
        return;
      case 'solicitation-answered':
        this.#answered.inc();
        return;
      case 'foreign-advertisement':
        this.#foreign.inc();
        if (!this.#routers.has(l.from) && this.#routers.size < 64) {
          this.#routers.add(l.from);
          this.#log.info({ router: l.from }, 'another router advertises on this link');
        }
        return;
      case 'disagreement':
        if (YIELD_FIELDS.has(l.field)) this.#yield(l.field, l.from);
        else this.#log.warn({ router: l.from, field: l.field }, 'another router advertises a different value');
        return;
      case 'interface-ready':
        if (this.#status === 'yielded' || this.#status === 'sending') return;
        this.#setStatus('sending', 'answering router solicitations and advertising periodically');
        this.#log.info({ pid: this.#radvd?.pid }, 'sending router advertisements');
        return;
      case 'interface-not-ready':
        if (this.#status === 'interface-not-ready' || this.#status === 'yielded') return;
        this.#setStatus(
          'interface-not-ready',
          'radvd cannot send on the interface yet (no link-local address, or link down)',
        );
        this.#log.warn('radvd cannot send on the interface yet (no link-local address, or link down)');
        return;
      case 'pid':
        this.#pidSeen = true;
        return;
      case 'started':
        this.#log.debug({ version: l.version }, 'radvd version');
        return;
      case 'own-advertisement':
      case 'chatter':
        this.#log.trace({ line: 'text' in l ? l.text : l.kind }, 'radvd');
        return;
      case 'no-raw-socket':
      case 'other':
        this.#log.info({ line: l.text }, 'radvd');
        return;
    }
  }

  /** Another router advertises other M/O flags: stop ours, for as long as this process runs. */
  #yield(field: string, router: string): void {
    if (this.#status === 'yielded' || this.#closing) return;
    const why = `router ${router} advertises a different ${field === 'AdvManagedFlag' ? 'Managed (M)' : 'Other (O)'} flag; ours could change whether hosts use DHCPv6`;
    this.#setStatus('yielded', why);
    this.#log.warn(
      { router, field },
      'another router advertises on this link with other DHCPv6 flags: metalboot stops its router advertisements (iPXE gets its answer from that router)',
    );
    const radvd = this.#radvd;
    if (radvd !== undefined) void radvd.close().then(() => this.#sweep());
  }

  /** Ends what is left of radvd (its privilege-separation child) and removes its directory. */
  async #sweep(): Promise<void> {
    const config = this.#configPath;
    if (config !== '') {
      const list = this.#o.processes ?? procProcesses;
      const mine = (): ProcessInfo[] => list().filter((p) => p.cmdline.includes(config) && p.pid !== process.pid);
      const gone = new Promise<void>((resolve) => {
        const deadline = Date.now() + 1000;
        const poll = (): void => {
          if (mine().length === 0 || Date.now() > deadline) resolve();
          else setTimeout(poll, 20);
        };
        poll();
      });
      await settled(gone, 1500);
      for (const p of mine()) {
        this.#log.warn({ pid: p.pid }, 'radvd process left after stop; killing it');
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    this.#removeDir();
  }

  #removeDir(): void {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
    process.off('exit', this.#removeDirOnExit);
  }

  async close(): Promise<void> {
    this.#closing = true;
    const radvd = this.#radvd;
    this.#radvd = undefined;
    if (radvd !== undefined) await radvd.close();
    await this.#sweep();
    this.#pidSeen = false;
    this.#reader = new RadvdLogReader();
    if (this.#status !== 'off') this.#setStatus('stopped', 'closed');
  }
}

function startError(radvd: string, f: StartFailure): MetalbootError {
  const e = f.spawnError;
  if (e?.code === 'ENOENT')
    return new MetalbootError(
      'RA_ERR_RADVD_MISSING',
      `${radvd} not found: install radvd (Debian/Ubuntu package "radvd")`,
      {
        cause: e,
      },
    );
  if (e?.code === 'EPERM' || /socket.*Operation not permitted/.test(f.stderr))
    return new MetalbootError(
      'RA_ERR_NO_CAPABILITY',
      `radvd cannot open its raw ICMPv6 socket: it needs CAP_NET_RAW (run as root, or give radvd the file capability: ` +
        `setcap cap_net_raw=+ep "$(readlink -f "$(command -v ${radvd})")", as the image does; a pod also needs NET_RAW ` +
        'in its capabilities and must not set allowPrivilegeEscalation: false)',
      { cause: e },
    );
  if (e !== undefined) return new MetalbootError('RA_ERR_START', `cannot run ${radvd}: ${e.message}`, { cause: e });
  if (f.kind === 'timeout')
    return new MetalbootError(
      'RA_ERR_START',
      `radvd did not write its pidfile within ${f.readyTimeoutMs} ms: ${f.stderr.split('\n').slice(-5).join(' | ') || '(nothing on stderr)'}`,
    );
  return new MetalbootError(
    'RA_ERR_START',
    `radvd exited (${f.signal ?? `code ${f.code}`}) at start: ${f.stderr.split('\n').slice(-5).join(' | ') || '(nothing on stderr)'}`,
  );
}

/** No restart mends a missing radvd or a missing capability. */
function permanent(f: StartFailure): boolean {
  return (
    f.spawnError?.code === 'ENOENT' ||
    f.spawnError?.code === 'EPERM' ||
    /socket.*Operation not permitted/.test(f.stderr)
  );
}
