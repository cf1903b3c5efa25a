/**
 * A network-namespace lab for end-to-end tests and benchmarks.
 *
 * ```
 *   root namespace (untouched: no links or routes are added here)
 *   ┌──────────────────────────── lab mbl-3fa9c1-41234-* ─────────────────────────────┐
 *   │  ns "sw" (switch)           ns "srv"                ns "client"                  │
 *   │  ┌──────────────┐  veth    ┌──────────────┐  veth  ┌──────────────┐             │
 *   │  │ br0 ─ p1 ────┼──────────┼─ eth0        │        │ eth0 ────────┼──┐          │
 *   │  │     ─ p2 ────┼──────────┼──────────────┼────────┼──────────────┘  │          │
 *   │  │     ─ tap0 (QEMU)       └──────────────┘        └──────────────┘             │
 *   │  └──────────────┘                                                                │
 *   └──────────────────────────────────────────────────────────────────────────────────┘
 * ```
 *
 * - Every namespace is named `<prefix><id>-<pid>-<name>`: a random 6-hex id so parallel and
 *   leftover runs never collide, and the owner's pid so {@link cleanupStaleLabs} can tell a
 *   crashed run's leftovers from a lab that is still in use.
 * - Links are created directly inside lab namespaces (`ip -n sw link add … peer … netns X`),
 *   so the root namespace never sees them and deleting the namespaces removes everything.
 * - IPv6 is disabled in every lab namespace by default, so captures hold only what a test sent.
 * - Every command is time-bounded; every spawned process is tracked and killed by
 *   {@link Lab.close}, which also sweeps `ip netns pids` for anything those processes forked.
 * - A process-level safety net (exit, SIGINT, SIGTERM, SIGHUP) removes labs that a crashing
 *   test never closed. It is the one piece of module-level state, on purpose: it has to
 *   outlive the test that forgot to clean up.
 *
 * Nothing here sends traffic anywhere but inside the lab's own namespaces.
 *
 * ```ts
 * requireRoot();
 * requireTools('ip', 'dnsmasq', 'dhclient');
 * const lab = await createLab();
 * try {
 *   await lab.addNamespace('srv');
 *   await lab.connect('srv', { ip: '10.77.0.1/24' });
 *   await lab.addNamespace('client');
 *   const { ifname } = await lab.connect('client');
 *   const cap = await lab.capture('sw', 'br0', 'udp port 67 or udp port 68');
 *   lab.spawn('srv', 'dnsmasq', ['--no-daemon', …]);
 *   await lab.exec('client', 'dhclient', ['-1', '-d', ifname], { timeoutMs: 20_000 });
 *   const { packets, pcapPath } = await cap.stop();
 * } finally {
 *   await lab.close();
 * }
 * ```
 */
import { spawn as spawnProcess, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readPcap, type CapturedPacket } from './netns-pcap.js';

export { parsePcap, readPcap, tsharkFields, tsharkJson, udpPackets, type CapturedPacket } from './netns-pcap.js';

/** Default namespace name prefix of labs ("metalboot lab"). */
export const DEFAULT_LAB_PREFIX = 'mbl-';

/** The namespace that holds the lab's bridges. */
export const SWITCH_NS = 'sw';

/** The bridge every `connect()` uses unless told otherwise. */
export const DEFAULT_BRIDGE = 'br0';

export type LabErrorCode =
  | 'LAB_ERR_NOT_ROOT'
  | 'LAB_ERR_MISSING_TOOL'
  | 'LAB_ERR_COMMAND_FAILED'
  | 'LAB_ERR_TIMEOUT'
  | 'LAB_ERR_CLOSED'
  | 'LAB_ERR_BAD_NAME'
  | 'LAB_ERR_UNKNOWN_NAMESPACE'
  | 'LAB_ERR_PROCESS_EXITED'
  | 'LAB_ERR_CLEANUP';

export class LabError extends Error {
  readonly code: LabErrorCode;
  constructor(code: LabErrorCode, message: string) {
    super(message);
    this.name = 'LabError';
    this.code = code;
  }
}

// ───────────────────────────── tool checks ─────────────────────────────

/** Tools the e2e tests use, with the Debian package that provides each. */
export const TOOLS = {
  ip: { bin: 'ip', pkg: 'iproute2' },
  bridge: { bin: 'bridge', pkg: 'iproute2' },
  sysctl: { bin: 'sysctl', pkg: 'procps' },
  unshare: { bin: 'unshare', pkg: 'util-linux' },
  tcpdump: { bin: 'tcpdump', pkg: 'tcpdump' },
  tshark: { bin: 'tshark', pkg: 'tshark' },
  dnsmasq: { bin: 'dnsmasq', pkg: 'dnsmasq-base' },
  dhclient: { bin: 'dhclient', pkg: 'isc-dhcp-client' },
  udhcpc: { bin: 'udhcpc', pkg: 'udhcpc' },
  busybox: { bin: 'busybox', pkg: 'busybox' },
  perfdhcp: { bin: 'perfdhcp', pkg: 'kea-admin' },
  dhcrelay: { bin: 'dhcrelay', pkg: 'isc-dhcp-relay' },
  qemu: { bin: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  ipxeQemuRoms: { file: '/usr/lib/ipxe/qemu/pxe-e1000.rom', pkg: 'ipxe-qemu' },
  ipxe: { file: '/usr/lib/ipxe/undionly.kpxe', pkg: 'ipxe' },
  ovmf: { file: '/usr/share/OVMF/OVMF_CODE_4M.fd', pkg: 'ovmf' },
  tun: { file: '/dev/net/tun', pkg: '(kernel tun module: modprobe tun)' },
  socat: { bin: 'socat', pkg: 'socat' },
  curl: { bin: 'curl', pkg: 'curl' },
  setpriv: { bin: 'setpriv', pkg: 'util-linux' },
  radvd: { bin: 'radvd', pkg: 'radvd' },
  python3: { bin: 'python3', pkg: 'python3' },
} as const satisfies Record<string, { bin: string; pkg: string } | { file: string; pkg: string }>;

export type ToolName = keyof typeof TOOLS;

/** Throws LAB_ERR_NOT_ROOT unless the process runs as root (namespaces need CAP_SYS_ADMIN). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new LabError(
      'LAB_ERR_NOT_ROOT',
      'end-to-end tests need root to create network namespaces: run them as root ' +
        '(e.g. `sudo -E npx vitest run --project e2e`)',
    );
  }
}

/** Absolute path of an executable found on PATH (plus /usr/sbin and /sbin), or undefined. */
export function findExecutable(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, bin);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Throws LAB_ERR_MISSING_TOOL naming every missing tool and the Debian package to install. */
export function requireTools(...tools: ToolName[]): void {
  const missing: string[] = [];
  for (const name of tools) {
    const tool: { bin?: string; file?: string; pkg: string } = TOOLS[name];
    if (tool.bin !== undefined && findExecutable(tool.bin) === undefined) {
      missing.push(`${tool.bin} (Debian package ${tool.pkg})`);
    } else if (tool.file !== undefined) {
      try {
        accessSync(tool.file, fsConstants.R_OK);
      } catch {
        missing.push(`${tool.file} (Debian package ${tool.pkg})`);
      }
    }
  }
  if (missing.length > 0) {
    throw new LabError('LAB_ERR_MISSING_TOOL', `missing for end-to-end tests: ${missing.join(', ')}`);
  }
}

// ───────────────────────────── bounded commands ─────────────────────────────

export interface ExecResult {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the command was killed because it ran past `timeoutMs`. */
  readonly timedOut: boolean;
}

export interface ExecOptions {
  /** Hard limit; the command is SIGKILLed after it (default 10 s). */
  readonly timeoutMs?: number;
  /** Extra environment, merged over process.env. */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Written to stdin, which is then closed. */
  readonly input?: string | Buffer;
  /** Throw LAB_ERR_COMMAND_FAILED (or LAB_ERR_TIMEOUT) unless the command exits 0. */
  readonly check?: boolean;
}

const OUTPUT_LIMIT = 8 * 1024 * 1024;
const DEFAULT_EXEC_TIMEOUT_MS = 10_000;

function quoteCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Runs a command (already wrapped in `ip netns exec` if need be) with a hard time limit. */
function runBounded(
  cmd: string,
  args: readonly string[],
  opts: ExecOptions,
  track?: (child: ChildProcess) => void,
): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawnProcess(cmd, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env === undefined ? process.env : { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    track?.(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += d.toString();
    });
    child.stdin?.on('error', () => undefined); // the command may exit without reading stdin
    child.stdin?.end(opts.input);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new LabError('LAB_ERR_COMMAND_FAILED', `${quoteCommand(cmd, args)}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = { code, signal, stdout, stderr, timedOut };
      if (opts.check === true && code !== 0) {
        reject(
          new LabError(
            timedOut ? 'LAB_ERR_TIMEOUT' : 'LAB_ERR_COMMAND_FAILED',
            `${quoteCommand(cmd, args)} ${timedOut ? `timed out after ${timeoutMs} ms` : `exited ${signal ?? code}`}: ` +
              (stderr.trim() || stdout.trim()).slice(0, 2000),
          ),
        );
      } else {
        resolve(result);
      }
    });
  });
}

/** `ip …` in the current (root) namespace: only namespace bookkeeping, never traffic. */
function ip(args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
  return runBounded('ip', args, { timeoutMs, check: true });
}

function ipSync(args: readonly string[], timeoutMs = 5_000): string {
  const r = spawnSync('ip', [...args], { timeout: timeoutMs, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Resolves true once the child has exited, false if it is still running after `ms`. */
function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Every namespace currently present (`ip netns list`), names only. */
export function listNamespaces(): string[] {
  return ipSync(['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

function pidsIn(fullNs: string): number[] {
  return ipSync(['netns', 'pids', fullNs])
    .split('\n')
    .map((s) => Number.parseInt(s, 10))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

// ───────────────────────────── names ─────────────────────────────

const NAME_RE = /^[a-z][a-z0-9_]{0,15}$/;

function labNameRe(prefix: string): RegExp {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped}([0-9a-f]{6})-(\\d+)-([a-z][a-z0-9_]*)$`);
}

/** A random locally administered unicast MAC (02:xx:xx:xx:xx:xx style). */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

// ───────────────────────────── the lab ─────────────────────────────

export interface LabOptions {
  /** Namespace name prefix (default {@link DEFAULT_LAB_PREFIX}). */
  readonly prefix?: string;
  /**
   * Where the default bridge lives: a dedicated switch namespace (default, `'sw'`) or the
   * short name of a namespace created with the lab, e.g. `'srv'` (then that namespace is
   * created first and the bridge has `bridgeIp` on it).
   */
  readonly switchNamespace?: string;
  /** Address for the bridge itself (`a.b.c.d/nn`), e.g. when the bridge is the server side. */
  readonly bridgeIp?: string;
  /** Keep IPv6 enabled in lab namespaces (default false: disabled for quiet captures). */
  readonly ipv6?: boolean;
  /** Keep `lab.dir` (pcaps, logs) after close (default: env METALBOOT_LAB_KEEP=1). */
  readonly keepArtifacts?: boolean;
  /** How long close() waits after SIGTERM before SIGKILL (default 2000 ms). */
  readonly killGraceMs?: number;
}

export interface ConnectOptions {
  /** IPv4 address with prefix length, e.g. `10.77.0.1/24`. Omit for an address-less client. */
  readonly ip?: string;
  /** MAC for the namespace side; random locally administered if omitted. */
  readonly mac?: string;
  /** Interface name inside the namespace (default eth0, eth1, … per namespace). */
  readonly ifname?: string;
  /** Bridge to plug into (default `br0`; create others with addBridge). */
  readonly bridge?: string;
  /** MTU for both ends (default 1500). */
  readonly mtu?: number;
}

export interface Link {
  /** Short namespace name. */
  readonly ns: string;
  /** Interface name inside `ns`. */
  readonly ifname: string;
  readonly mac: string;
  /** The bridge-side end (in the switch namespace). */
  readonly peer: string;
  readonly bridge: string;
  readonly ip?: string;
}

export interface SpawnOptions {
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Default `['ignore', 'pipe', 'pipe']`; piped output is kept (last 1 MiB) for lab.output(). */
  readonly stdio?: StdioOptions;
}

export interface CaptureOptions {
  /** Where to write the pcap (default: a fresh file in lab.dir). */
  readonly path?: string;
  /** How long to wait for tcpdump to start listening (default 5 s). */
  readonly startTimeoutMs?: number;
}

export interface CaptureResult {
  /** The pcap file; stays until lab.close() (or forever with keepArtifacts). */
  readonly pcapPath: string;
  /** Every frame, decoded as far as Ethernet/IPv4/UDP. */
  readonly packets: CapturedPacket[];
}

export interface Capture {
  readonly pcapPath: string;
  /** What tcpdump has written so far (it flushes every packet), without stopping it. */
  peek(): CapturedPacket[];
  /**
   * Polls the capture until `predicate` holds for the packets so far and resolves with them;
   * rejects with LAB_ERR_TIMEOUT after `timeoutMs`. Use it to wait for a DHCP ACK, say.
   */
  waitFor(predicate: (packets: CapturedPacket[]) => boolean, timeoutMs: number): Promise<CapturedPacket[]>;
  /** Stops tcpdump (flushing the file) and parses what it wrote. Idempotent. */
  stop(): Promise<CaptureResult>;
}

interface OutputTail {
  stdout: string;
  stderr: string;
}

const TAIL_LIMIT = 1024 * 1024;

export class Lab {
  /** Random 6-hex id shared by every namespace of this lab. */
  readonly id: string;
  readonly prefix: string;
  /** Scratch directory for pcaps, configs, leases, logs. Removed by close() unless kept. */
  readonly dir: string;
  /** Short name of the namespace holding the bridges. */
  readonly switchNs: string;

  readonly #namespaces = new Map<string, string>(); // short → full
  readonly #bridges = new Set<string>();
  readonly #children = new Set<ChildProcess>();
  readonly #tails = new WeakMap<ChildProcess, OutputTail>();
  readonly #ifCount = new Map<string, number>();
  readonly #ipv6: boolean;
  readonly #keep: boolean;
  readonly #killGraceMs: number;
  #portCount = 0;
  #closing: Promise<void> | undefined;

  /** Use {@link createLab}. */
  constructor(opts: LabOptions & { id: string }) {
    this.id = opts.id;
    this.prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
    this.switchNs = opts.switchNamespace ?? SWITCH_NS;
    this.#ipv6 = opts.ipv6 ?? false;
    this.#keep = opts.keepArtifacts ?? process.env.METALBOOT_LAB_KEEP === '1';
    this.#killGraceMs = opts.killGraceMs ?? 2_000;
    this.dir = mkdtempSync(path.join(tmpdir(), `metalboot-lab-${this.id}-`));
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Full (kernel) namespace name for a short name, e.g. `srv` → `mbl-3fa9c1-41234-srv`. */
  nsName(short: string): string {
    const full = this.#namespaces.get(short);
    if (full === undefined) {
      throw new LabError('LAB_ERR_UNKNOWN_NAMESPACE', `no namespace "${short}" in lab ${this.id}`);
    }
    return full;
  }

  /** Short names of every namespace, in creation order. */
  get namespaces(): string[] {
    return [...this.#namespaces.keys()];
  }

  /** Full names of every namespace, in creation order. */
  get fullNamespaces(): string[] {
    return [...this.#namespaces.values()];
  }

  /** Creates a namespace with lo up (and IPv6 off unless asked). Returns the full name. */
  async addNamespace(name: string): Promise<string> {
    this.#assertOpen();
    if (!NAME_RE.test(name)) {
      throw new LabError('LAB_ERR_BAD_NAME', `namespace name "${name}" must match ${NAME_RE}`);
    }
    if (this.#namespaces.has(name)) return this.nsName(name);
    const full = `${this.prefix}${this.id}-${process.pid}-${name}`;
    // Register before creating so that close() and the safety net remove it even if a later
    // step fails.
    this.#namespaces.set(name, full);
    await ip(['netns', 'add', full]);
    await ip(['-n', full, 'link', 'set', 'lo', 'up']);
    if (!this.#ipv6) {
      await this.exec(
        name,
        'sysctl',
        ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'],
        {
          check: true,
        },
      );
    }
    return full;
  }

  /** Creates a bridge (STP off, forwarding at once, no multicast snooping) in the switch namespace. */
  async addBridge(name: string, opts: { ip?: string } = {}): Promise<string> {
    this.#assertOpen();
    if (this.#bridges.has(name)) return name;
    const sw = this.nsName(this.switchNs);
    this.#bridges.add(name);
    await ip([
      '-n',
      sw,
      'link',
      'add',
      name,
      'type',
      'bridge',
      'stp_state',
      '0',
      'forward_delay',
      '0',
      'mcast_snooping',
      '0',
    ]);
    if (opts.ip !== undefined) await ip(['-n', sw, 'addr', 'add', opts.ip, 'dev', name]);
    await ip(['-n', sw, 'link', 'set', name, 'up']);
    return name;
  }

  /**
   * Plugs namespace `ns` into a bridge with a veth pair. The namespace end is `eth0`, `eth1`, …
   * (or `opts.ifname`), up, with `opts.mac` and `opts.ip` when given.
   */
  async connect(ns: string, opts: ConnectOptions = {}): Promise<Link> {
    this.#assertOpen();
    const full = this.nsName(ns);
    const sw = this.nsName(this.switchNs);
    const bridge = opts.bridge ?? DEFAULT_BRIDGE;
    if (!this.#bridges.has(bridge)) {
      throw new LabError('LAB_ERR_BAD_NAME', `no bridge "${bridge}" in lab ${this.id}; call addBridge first`);
    }
    const n = this.#ifCount.get(ns) ?? 0;
    this.#ifCount.set(ns, n + 1);
    const ifname = opts.ifname ?? `eth${n}`;
    const peer = `p${++this.#portCount}`;
    const mac = (opts.mac ?? randomMac()).toLowerCase();
    const mtu = String(opts.mtu ?? 1500);
    if (full === sw) {
      // A namespace plugged into its own bridge: both ends live here.
      await ip(['-n', sw, 'link', 'add', peer, 'mtu', mtu, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu]);
    } else {
      await ip([
        '-n',
        sw,
        'link',
        'add',
        peer,
        'mtu',
        mtu,
        'type',
        'veth',
        'peer',
        'name',
        ifname,
        'mtu',
        mtu,
        'netns',
        full,
      ]);
    }
    await ip(['-n', full, 'link', 'set', ifname, 'address', mac]);
    if (opts.ip !== undefined) await ip(['-n', full, 'addr', 'add', opts.ip, 'dev', ifname]);
    await ip(['-n', sw, 'link', 'set', peer, 'master', bridge]);
    await ip(['-n', sw, 'link', 'set', peer, 'up']);
    await ip(['-n', full, 'link', 'set', ifname, 'up']);
    return opts.ip === undefined ? { ns, ifname, mac, peer, bridge } : { ns, ifname, mac, peer, bridge, ip: opts.ip };
  }

  /**
   * Creates a tap device on a bridge, for `qemu … -netdev tap,ifname=<name>,script=no,downscript=no`.
   * Run QEMU in the switch namespace (`lab.spawn(lab.switchNs, 'qemu-system-x86_64', …)`).
   */
  async addTap(opts: { bridge?: string; ifname?: string } = {}): Promise<{ ns: string; ifname: string }> {
    this.#assertOpen();
    const sw = this.nsName(this.switchNs);
    const bridge = opts.bridge ?? DEFAULT_BRIDGE;
    const ifname = opts.ifname ?? `tap${++this.#portCount}`;
    await ip(['-n', sw, 'tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
    await ip(['-n', sw, 'link', 'set', ifname, 'master', bridge]);
    await ip(['-n', sw, 'link', 'set', ifname, 'up']);
    return { ns: this.switchNs, ifname };
  }

  /** Adds another address to an interface. */
  async addAddress(ns: string, ifname: string, cidr: string): Promise<void> {
    this.#assertOpen();
    await ip(['-n', this.nsName(ns), 'addr', 'add', cidr, 'dev', ifname]);
  }

  /** `ip route add <dest> via <via> [dev <dev>]` in `ns` (dest may be `default`). */
  async addRoute(ns: string, dest: string, via: string, opts: { dev?: string } = {}): Promise<void> {
    this.#assertOpen();
    const args = ['-n', this.nsName(ns), 'route', 'add', dest, 'via', via];
    if (opts.dev !== undefined) args.push('dev', opts.dev);
    await ip(args);
  }

  /** Runs a command inside `ns` and waits for it, never longer than `timeoutMs` (default 10 s). */
  exec(ns: string, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    this.#assertOpen();
    return runBounded('ip', ['netns', 'exec', this.nsName(ns), cmd, ...args], opts, (child) => this.#track(child));
  }

  /**
   * Starts a long-running command inside `ns`. The process is tracked: close() SIGTERMs it,
   * then SIGKILLs it after the grace period. Piped output is drained into a tail buffer
   * readable with {@link output} and {@link waitForOutput}, so it can never block the child.
   */
  spawn(ns: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.#assertOpen();
    const child = spawnProcess('ip', ['netns', 'exec', this.nsName(ns), cmd, ...args], {
      stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: opts.env === undefined ? process.env : { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    this.#track(child);
    const tail: OutputTail = { stdout: '', stderr: '' };
    this.#tails.set(child, tail);
    const keep = (key: keyof OutputTail) => (d: Buffer) => {
      tail[key] = (tail[key] + d.toString()).slice(-TAIL_LIMIT);
    };
    child.stdout?.on('data', keep('stdout'));
    child.stderr?.on('data', keep('stderr'));
    // A failed spawn (ENOENT of `ip` itself) must not become an unhandled 'error' event.
    child.on('error', (err) => {
      tail.stderr += `\nspawn error: ${err.message}`;
    });
    return child;
  }

  /**
   * Runs a Node.js script inside `ns` (`ip netns exec <ns> node [--import tsx] script …args`).
   * TypeScript scripts (.ts/.mts/.cts) are loaded through tsx. `env` is merged over process.env.
   */
  spawnNode(
    ns: string,
    scriptPath: string,
    args: readonly string[] = [],
    env: Record<string, string> = {},
  ): ChildProcess {
    const nodeArgs = /\.[mc]?ts$/.test(scriptPath) ? ['--import', 'tsx', scriptPath] : [scriptPath];
    return this.spawn(ns, process.execPath, [...nodeArgs, ...args], { env });
  }

  /** Output a spawned process has written so far (last 1 MiB of each stream). */
  output(child: ChildProcess): OutputTail {
    const tail = this.#tails.get(child);
    return { stdout: tail?.stdout ?? '', stderr: tail?.stderr ?? '' };
  }

  /**
   * Resolves with the combined output once `pattern` appears in a spawned process's stdout or
   * stderr; rejects with LAB_ERR_PROCESS_EXITED if it exits first, LAB_ERR_TIMEOUT after
   * `timeoutMs` (default 10 s).
   */
  waitForOutput(child: ChildProcess, pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const matches = (): string | undefined => {
      const { stdout, stderr } = this.output(child);
      const all = `${stdout}\n${stderr}`;
      return (typeof pattern === 'string' ? all.includes(pattern) : pattern.test(all)) ? all : undefined;
    };
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        child.off('exit', onExit);
      };
      const check = (): void => {
        const hit = matches();
        if (hit !== undefined) {
          done();
          resolve(hit);
        }
      };
      const onExit = (): void => {
        // Let the last 'data' events land before deciding.
        setTimeout(() => {
          const hit = matches();
          done();
          if (hit !== undefined) resolve(hit);
          else {
            const { stdout, stderr } = this.output(child);
            reject(
              new LabError(
                'LAB_ERR_PROCESS_EXITED',
                `process exited before ${String(pattern)}:\n${stdout}\n${stderr}`.slice(0, 4000),
              ),
            );
          }
        }, 50);
      };
      const timer = setTimeout(() => {
        done();
        const { stdout, stderr } = this.output(child);
        reject(
          new LabError(
            'LAB_ERR_TIMEOUT',
            `no ${String(pattern)} within ${timeoutMs} ms:\n${stdout}\n${stderr}`.slice(0, 4000),
          ),
        );
      }, timeoutMs);
      const poll = setInterval(check, 25);
      if (child.exitCode !== null || child.signalCode !== null) onExit();
      else child.once('exit', onExit);
      check();
    });
  }

  /**
   * Starts `tcpdump -i <ifname> -w <pcap> <filter>` inside `ns` and resolves once it is
   * listening. `stop()` ends it and returns the pcap path with every frame parsed; feed the
   * path to tsharkFields()/tsharkJson() for Wireshark's view of the same packets.
   */
  async capture(ns: string, ifname: string, filter = '', opts: CaptureOptions = {}): Promise<Capture> {
    this.#assertOpen();
    const pcapPath = opts.path ?? path.join(this.dir, `${ns}-${ifname}-${Date.now()}-${++this.#portCount}.pcap`);
    const args = ['-i', ifname, '-n', '-s', '0', '-U', '--immediate-mode', '-Z', 'root', '-w', pcapPath];
    if (filter !== '') args.push(filter);
    const child = this.spawn(ns, 'tcpdump', args);
    await this.waitForOutput(child, /listening on/, opts.startTimeoutMs ?? 5_000);
    let stopping: Promise<CaptureResult> | undefined;
    const peek = (): CapturedPacket[] => readPcap(pcapPath, { partial: true });
    return {
      pcapPath,
      peek,
      waitFor: async (predicate, timeoutMs) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const packets = peek();
          if (predicate(packets)) return packets;
          if (Date.now() >= deadline) {
            throw new LabError(
              'LAB_ERR_TIMEOUT',
              `capture ${pcapPath}: condition not met within ${timeoutMs} ms (${packets.length} packets)`,
            );
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new LabError('LAB_ERR_PROCESS_EXITED', `tcpdump exited: ${this.output(child).stderr}`);
          }
          await sleep(Math.min(200, Math.max(1, deadline - Date.now())));
        }
      },
      stop: () => {
        stopping ??= (async () => {
          child.kill('SIGINT');
          if (!(await waitExit(child, 5_000))) {
            child.kill('SIGKILL');
            await waitExit(child, 2_000);
          }
          return { pcapPath, packets: readPcap(pcapPath) };
        })();
        return stopping;
      },
    };
  }

  /**
   * Kills every tracked process (SIGTERM, then SIGKILL after the grace period), kills anything
   * else still inside a lab namespace, deletes the namespaces (and with them every veth, tap
   * and bridge) and the scratch directory. Safe to call more than once; later calls return the
   * first call's promise. Rejects with LAB_ERR_CLEANUP if a namespace survived.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    const running = [...this.#children].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of running) c.kill('SIGTERM');
    const exited = await Promise.all(running.map((c) => waitExit(c, this.#killGraceMs)));
    const stubborn = running.filter((_, i) => exited[i] !== true);
    for (const c of stubborn) c.kill('SIGKILL');
    await Promise.all(stubborn.map((c) => waitExit(c, 2_000)));

    const problems: string[] = [];
    const fulls = [...this.#namespaces.values()].reverse();
    for (const full of fulls) {
      // Whatever the tracked processes forked (scripts, daemons) is still in the namespace.
      for (let round = 0; round < 40; round++) {
        const pids = pidsIn(full);
        if (pids.length === 0) break;
        for (const pid of pids) killQuietly(pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
        await sleep(50);
      }
      const r = await runBounded('ip', ['netns', 'del', full], { timeoutMs: 10_000 });
      if (r.code !== 0 && listNamespaces().includes(full)) problems.push(`${full}: ${r.stderr.trim()}`);
    }
    const left = listNamespaces().filter((n) => fulls.includes(n));
    for (const n of left) if (!problems.some((p) => p.startsWith(n))) problems.push(n);
    if (!this.#keep) rmSync(this.dir, { recursive: true, force: true });
    unregister(this);
    if (problems.length > 0) {
      throw new LabError('LAB_ERR_CLEANUP', `lab ${this.id} left namespaces behind: ${problems.join('; ')}`);
    }
  }

  /** Synchronous last-resort cleanup for process exit and fatal signals. */
  closeSync(): void {
    if (this.#closing === undefined) this.#closing = Promise.resolve();
    for (const c of this.#children) if (c.pid !== undefined && c.exitCode === null) killQuietly(c.pid, 'SIGKILL');
    for (const full of [...this.#namespaces.values()].reverse()) {
      for (const pid of pidsIn(full)) killQuietly(pid, 'SIGKILL');
      spawnSync('ip', ['netns', 'del', full], { timeout: 5_000, stdio: 'ignore' });
    }
    if (!this.#keep) rmSync(this.dir, { recursive: true, force: true });
    unregister(this);
  }

  #track(child: ChildProcess): void {
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new LabError('LAB_ERR_CLOSED', `lab ${this.id} is closed`);
  }
}

/**
 * Creates a lab: a switch namespace with bridge `br0` (or, with `switchNamespace: 'srv'`, the
 * bridge inside that namespace). Requires root and iproute2. Add namespaces and connect them.
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  requireRoot();
  requireTools('ip', 'sysctl');
  const lab = new Lab({ ...opts, id: randomBytes(3).toString('hex') });
  register(lab);
  try {
    await lab.addNamespace(lab.switchNs);
    await lab.addBridge(DEFAULT_BRIDGE, opts.bridgeIp === undefined ? {} : { ip: opts.bridgeIp });
  } catch (err) {
    await lab.close().catch(() => undefined);
    throw err;
  }
  return lab;
}

// ───────────────────────────── stale labs ─────────────────────────────

export interface CleanupStaleOptions {
  /** Also remove labs whose owner process is still alive (never this process's open labs). */
  readonly includeLive?: boolean;
}

/**
 * Deletes namespaces left behind by earlier runs: names `<prefix><6 hex>-<pid>-<name>` whose
 * owner pid is gone (or every such lab with `includeLive`). Processes inside are SIGKILLed
 * first. Returns the namespaces it deleted. Never touches namespaces of open labs of this
 * process, nor names that do not follow the lab pattern.
 */
export async function cleanupStaleLabs(prefix = DEFAULT_LAB_PREFIX, opts: CleanupStaleOptions = {}): Promise<string[]> {
  requireRoot();
  const re = labNameRe(prefix);
  const mine = new Set([...openLabs].flatMap((l) => l.fullNamespaces));
  const deleted: string[] = [];
  for (const name of listNamespaces()) {
    const m = re.exec(name);
    if (m === null || mine.has(name)) continue;
    const pid = Number(m[2]);
    if (opts.includeLive !== true && pid !== process.pid && isAlive(pid)) continue;
    for (let round = 0; round < 20; round++) {
      const pids = pidsIn(name);
      if (pids.length === 0) break;
      for (const p of pids) killQuietly(p, 'SIGKILL');
      await sleep(50);
    }
    const r = await runBounded('ip', ['netns', 'del', name], { timeoutMs: 10_000 });
    if (r.code === 0) deleted.push(name);
  }
  return deleted;
}

// ───────────────────────────── safety net ─────────────────────────────

const openLabs = new Set<Lab>();
const FATAL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();

function cleanupAllSync(): void {
  for (const lab of [...openLabs]) {
    try {
      lab.closeSync();
    } catch {
      // best effort: keep going with the other labs
    }
  }
}

function register(lab: Lab): void {
  openLabs.add(lab);
  if (openLabs.size !== 1 || signalHandlers.size > 0) return;
  process.on('exit', cleanupAllSync);
  for (const sig of FATAL_SIGNALS) {
    const handler = (): void => {
      cleanupAllSync();
      uninstallSafetyNet();
      // Re-raise so the default action (or the test runner's own handler) still happens.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    signalHandlers.set(sig, handler);
    process.on(sig, handler);
  }
}

function unregister(lab: Lab): void {
  openLabs.delete(lab);
  if (openLabs.size === 0) uninstallSafetyNet();
}

function uninstallSafetyNet(): void {
  process.off('exit', cleanupAllSync);
  for (const [sig, handler] of signalHandlers) process.off(sig, handler);
  signalHandlers.clear();
}
