/**
 * One DHCP server process in the lab's server namespace, pinned to a CPU with taskset. `ip netns
 * exec` and taskset both exec, so the spawned pid is the server itself and /proc/<pid>/stat is
 * its CPU time.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../lab/netns.js';
import { NET, type Peer } from './dhcp-peers.js';
import { cpuTimes, memoryMiB } from './machine.js';
import { perfdhcpArgs, parsePerfdhcp } from './perfdhcp.js';

export interface ServerProc {
  readonly peer: Peer;
  readonly pid: number;
  readonly stateDir: string;
  readonly child: ChildProcess;
  /** Milliseconds from spawn to the first completed probe exchange. */
  readonly readyMs: number;
  /** utime and stime so far, seconds. */
  cpu(): { user: number; sys: number } | undefined;
  memory(): { rss: number; hwm: number } | undefined;
  /** SIGTERM, then SIGKILL after 5 s; saves the output tail next to the state. */
  stop(): Promise<void>;
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '?';
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export interface StartOptions {
  readonly cpu: number;
  /** Extra node flags (metalboot only), e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
  /** Client-side namespace and interface for the readiness probe. */
  readonly clientNs: string;
  readonly readyTimeoutMs?: number;
  /** perfdhcp arguments of the readiness probe [default: one reserved MAC, DHCPv4 relay mode]. */
  readonly probe?: readonly string[];
}

/**
 * Starts `peer` with a fresh state directory and resolves once it completes one 4-way exchange
 * of `o.probe` (a reserved MAC, relay mode), so a measurement never includes start-up.
 */
export async function startServer(lab: Lab, peer: Peer, stateDir: string, o: StartOptions): Promise<ServerProc> {
  mkdirSync(stateDir, { recursive: true });
  const c = peer.command(stateDir);
  const args = peer.name === 'metalboot' && o.nodeFlags !== undefined ? [...o.nodeFlags, ...c.args] : [...c.args];
  const child = lab.spawn('srv', 'taskset', ['-c', String(o.cpu), c.cmd, ...args], { env: c.env ?? {}, cwd: stateDir });
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (!exited(child)) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 10_000))) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
      }
    }
    const out = lab.output(child);
    writeFileSync(
      path.join(stateDir, 'server-output.txt'),
      `$ ${c.cmd} ${args.join(' ')}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}\n`,
    );
  };
  const spawned = Date.now();
  const deadline = spawned + (o.readyTimeoutMs ?? 30_000);
  const probe =
    o.probe ??
    perfdhcpArgs({
      mode: 'relay',
      rate: 10,
      periodS: 1,
      macBase: NET.reservedMacBase,
      clients: 1,
      ifname: '',
      localIp: NET.clientIp,
      serverIp: NET.serverIp,
      exitWaitUs: 300_000,
      dropTimeS: 0.5,
    });
  for (;;) {
    if (exited(child)) {
      await stop();
      const out = lab.output(child);
      throw new Error(
        `${peer.name} exited during start-up (${child.exitCode ?? child.signalCode}):\n${out.stdout.slice(-2000)}\n${out.stderr.slice(-2000)}`,
      );
    }
    const r = await lab.exec(o.clientNs, 'perfdhcp', [...probe], { timeoutMs: 10_000 });
    const rep = parsePerfdhcp(r.stdout);
    if ((rep.request?.received ?? 0) > 0)
      return {
        peer,
        pid,
        stateDir,
        child,
        readyMs: Date.now() - spawned,
        cpu: () => cpuTimes(pid),
        memory: () => memoryMiB(pid),
        stop,
      };
    if (Date.now() > deadline) {
      const wchan = readProc(pid, 'wchan');
      const state = /^State:\s+(.*)$/m.exec(readProc(pid, 'status'))?.[1] ?? '?';
      await stop();
      throw new Error(
        `${peer.name} did not answer a probe within ${o.readyTimeoutMs ?? 30_000} ms (state ${state}, wchan ${wchan}):\n${lab.output(child).stdout.slice(-1000)}\n${lab.output(child).stderr.slice(-1000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
