/**
 * Where each node's agent really is: node → IPA's own callback URL and the certificate it sent
 * (for pinning), learned from heartbeats that Ironic accepted, plus MAC → node for the MACs
 * Ironic's lookup answers confirmed (lookup.ts; for /debug/explain), at most
 * {@link MAX_MACS_PER_NODE} per node. Each record is one agent, named in Ironic's callback URL by its
 * identity (callback-url.ts); a callback for another identity of the node is not forwarded. Kept in memory and, with a state directory, one JSON file per
 * node (`agents/node-<node>.json`, replaced atomically), so a restart loses nothing and
 * replicas sharing the directory find records they did not write (a miss re-reads the file);
 * replicas with leader election keep them in ConfigMaps instead (kube/agent-records.ts), read
 * the same way on a miss.
 *
 * A heartbeat is "pending" from the moment the API proxy forwards it until Ironic answers:
 * the conductor may call the agent before that answer arrives, so a callback for a node with a
 * pending heartbeat waits (bounded) for it to settle and then uses what it committed. Only a
 * heartbeat Ironic accepted (2xx — it checked the agent token) changes the record, so a forged
 * heartbeat cannot redirect the callbacks.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Service } from '../base/service.js';
import { writeFileAtomic } from './atomic-file.js';
import { agentIdOf, type AgentId } from './callback-url.js';
import { isNodeIdent } from './proxy-urls.js';

export interface AgentRecord {
  readonly node: string;
  /** IPA's own callback URL (`https://192.0.2.10:9999`). */
  readonly agentUrl: string;
  /** The certificate IPA sent as agent_verify_ca; undefined when it sent none. */
  readonly agentCaPem: string | undefined;
  /** The agent's identity in its callback URL: agentIdOf(agentUrl, agentCaPem), never stored. */
  readonly agentId: AgentId;
  /** MAC addresses Ironic confirmed in the node's lookups, oldest first, at most MAX_MACS_PER_NODE. */
  readonly macs: readonly string[];
  /** When agentUrl or agentCaPem last changed (epoch ms). */
  readonly updatedAt: number;
}

/** Where records outlive the process: files in proxy.stateDir, or ConfigMaps (kube/agent-records.ts). */
export interface AgentRecordBackend {
  /** For logs: a directory or `ConfigMaps ns/…`. */
  readonly where: string;
  loadAll(): Promise<readonly AgentRecord[]>;
  /** The node's record as stored now (another replica may have written it). */
  read(node: string): Promise<AgentRecord | undefined>;
  write(r: AgentRecord): Promise<void>;
  /**
   * Shared backends: calls `changed` with every record another replica writes, from start()
   * until stop(), so memory never lags behind the store (a heartbeat equal to memory is not
   * written again).
   */
  follow?(changed: (r: AgentRecord) => void): void;
  stop?(): Promise<void>;
}

export interface AgentStoreOptions {
  /** Persist records here (`agents/` inside is ours); in memory only when undefined. */
  readonly stateDir: string | undefined;
  /** Persist records there instead of stateDir (replicas sharing them through the API). */
  readonly backend?: AgentRecordBackend | undefined;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
  /** Longest a callback waits for a pending heartbeat of its node. Default 30 000 ms. */
  readonly pendingWaitMs?: number;
}

export interface PendingHeartbeat {
  /** Ironic accepted the heartbeat: record what IPA said. */
  commit(agent: { readonly url: string; readonly caPem: string | undefined }): Promise<void>;
  /** Ironic refused it, or it failed: keep the record as it was. */
  abort(): void;
}

const FILE_VERSION = 1;

/**
 * The MACs kept per node: a server has a handful of NICs, and a blade chassis or a host with
 * many virtual functions a few dozen. Beyond it the first confirmed are forgotten first.
 */
export const MAX_MACS_PER_NODE = 64;

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * `known` with `added` appended, at most `max`, dropping the oldest; `known` itself (the same
 * array) when it already holds every one of `added`, so callers can tell nothing changed. Pure.
 */
export function mergeMacs(
  known: readonly string[],
  added: readonly string[],
  max = MAX_MACS_PER_NODE,
): readonly string[] {
  if (added.every((m) => known.includes(m))) return known;
  const fresh = [...new Set(added)];
  return [...known.filter((m) => !fresh.includes(m)), ...fresh].slice(-max);
}

function fileName(node: string): string {
  return `node-${node}.json`;
}

/** Parses a persisted record; undefined when malformed. Pure. */
export function parseAgentRecord(text: string): AgentRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const r = v as Record<string, unknown>;
  if (
    r['version'] !== FILE_VERSION ||
    typeof r['node'] !== 'string' ||
    !isNodeIdent(r['node']) ||
    typeof r['agentUrl'] !== 'string'
  )
    return undefined;
  const ca = r['agentCaPem'];
  if (ca !== undefined && ca !== null && typeof ca !== 'string') return undefined;
  // Files written before lookups were confirmed may list thousands: keep the newest valid ones.
  const macs = Array.isArray(r['macs'])
    ? [...new Set(r['macs'].filter((m): m is string => typeof m === 'string' && MAC.test(m)))].slice(-MAX_MACS_PER_NODE)
    : [];
  const updatedAt = typeof r['updatedAt'] === 'number' ? r['updatedAt'] : 0;
  const agentCaPem = typeof ca === 'string' ? ca : undefined;
  return {
    node: r['node'],
    agentUrl: r['agentUrl'],
    agentCaPem,
    agentId: agentIdOf(r['agentUrl'], agentCaPem),
    macs,
    updatedAt,
  };
}

export function formatAgentRecord(r: AgentRecord): string {
  return `${JSON.stringify({ version: FILE_VERSION, node: r.node, agentUrl: r.agentUrl, agentCaPem: r.agentCaPem ?? null, macs: r.macs, updatedAt: r.updatedAt }, null, 2)}\n`;
}

export class AgentStore implements Service {
  readonly name = 'ironic-agents';
  readonly #backend: AgentRecordBackend | undefined;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #pendingWaitMs: number;
  readonly #records = new Map<string, AgentRecord>();
  readonly #macToNode = new Map<string, string>();
  /** MACs confirmed by lookups before the node's first accepted heartbeat. */
  readonly #lookupMacs = new Map<string, readonly string[]>();
  readonly #pending = new Map<string, Set<Promise<void>>>();
  /** Per-node write chains, so two writes of one file never interleave. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(o: AgentStoreOptions) {
    this.#log = o.logger.child({ component: 'ironic-agents' });
    this.#backend =
      o.backend ?? (o.stateDir === undefined ? undefined : new AgentFiles(path.join(o.stateDir, 'agents'), this.#log));
    this.#now = o.now ?? Date.now;
    this.#pendingWaitMs = o.pendingWaitMs ?? 30_000;
    const records = this.#records;
    new Gauge({
      name: 'metalboot_ipa_callback_agents',
      help: 'Nodes whose agent address the callback listener knows',
      registers: [o.registry],
      collect() {
        this.set(records.size);
      },
    });
  }

  get persistent(): boolean {
    return this.#backend !== undefined;
  }

  async start(): Promise<void> {
    if (this.#backend === undefined) {
      this.#log.warn(
        'no proxy.stateDir: agent addresses are kept in memory only; after a restart, callbacks for a node fail until its next heartbeat',
      );
      return;
    }
    const records = await this.#backend.loadAll();
    for (const r of records) this.#put(r);
    this.#backend.follow?.((r) => {
      // A record being written here is this replica's to decide; its write settles it.
      if (!this.#writes.has(r.node)) this.#put(r);
    });
    this.#log.info({ from: this.#backend.where, nodes: records.length }, 'agent addresses loaded');
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#writes.values()]);
    await this.#backend?.stop?.();
  }

  /** The record in memory (no waiting, no disk). */
  get(node: string): AgentRecord | undefined {
    return this.#records.get(node);
  }

  /**
   * The record of agent `agent` of `node` to forward a callback with: waits for pending
   * heartbeats of the node to settle, then memory, then the node's file (written by another
   * replica sharing the directory). Undefined when the node's agent is another one.
   */
  async resolve(node: string, agent: AgentId): Promise<AgentRecord | undefined> {
    const pending = this.#pending.get(node);
    if (pending !== undefined && pending.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#pendingWaitMs);
      });
      await Promise.race([Promise.allSettled([...pending]), timeout]);
      clearTimeout(timer);
    }
    const mem = this.#records.get(node);
    if (mem?.agentId === agent) return mem;
    if (this.#backend === undefined || !isNodeIdent(node)) return undefined;
    let disk: AgentRecord | undefined;
    try {
      disk = await this.#backend.read(node);
    } catch (err) {
      this.#log.warn({ err, node, from: this.#backend.where }, 'could not read an agent address');
      return undefined;
    }
    if (disk === undefined || disk.node !== node || disk.agentId !== agent) return undefined;
    this.#put(disk);
    return disk;
  }

  /** Marks a heartbeat of `node` as in flight; settle it with commit() or abort(). */
  beginHeartbeat(node: string): PendingHeartbeat {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    let set = this.#pending.get(node);
    if (set === undefined) {
      set = new Set();
      this.#pending.set(node, set);
    }
    set.add(done);
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      set.delete(done);
      if (set.size === 0 && this.#pending.get(node) === set) this.#pending.delete(node);
      settle();
    };
    return {
      commit: async (agent) => {
        try {
          await this.#commit(node, agent);
        } finally {
          finish();
        }
      },
      abort: finish,
    };
  }

  /**
   * Ironic confirmed that `macs` are ports of `node` (lookup.ts: never the other addresses a
   * lookup named). The node's file is written only when its list changed.
   */
  async learnMacs(node: string, macs: readonly string[]): Promise<void> {
    if (macs.length === 0 || !isNodeIdent(node)) return;
    const r = this.#records.get(node);
    const known = r?.macs ?? this.#lookupMacs.get(node) ?? [];
    const next = mergeMacs(known, macs);
    this.#remap(node, known, next);
    if (next === known) return;
    if (r === undefined) this.#lookupMacs.set(node, next);
    else await this.#save({ ...r, macs: next });
  }

  /** The MACs Ironic confirmed for `node` (its lookups), boot MAC first when it was asked alone. */
  macsOf(node: string): readonly string[] | undefined {
    return this.#records.get(node)?.macs ?? this.#lookupMacs.get(node);
  }

  nodeForMac(mac: string): string | undefined {
    return this.#macToNode.get(mac.toLowerCase());
  }

  /** For /debug/explain: the callback mapping of the node this MAC belongs to. */
  explain(
    mac: string,
    callbackUrl: ((node: string, agent: AgentId) => string | undefined) | undefined,
  ): Record<string, unknown> | undefined {
    const node = this.nodeForMac(mac);
    if (node === undefined) return undefined;
    const r = this.#records.get(node);
    return {
      ironicAgent: {
        node,
        callbackUrl: r === undefined ? undefined : callbackUrl?.(node, r.agentId),
        agentUrl: r?.agentUrl,
        agentCertificatePinned: r === undefined ? undefined : r.agentCaPem !== undefined,
        updatedAt: r === undefined ? undefined : new Date(r.updatedAt).toISOString(),
        persisted: this.persistent,
        detail:
          r === undefined
            ? 'looked up by IPA, no heartbeat accepted yet'
            : 'heartbeat accepted; callbacks are forwarded to agentUrl',
      },
    };
  }

  async #commit(node: string, agent: { readonly url: string; readonly caPem: string | undefined }): Promise<void> {
    const old = this.#records.get(node);
    const macs = mergeMacs(old?.macs ?? [], this.#lookupMacs.get(node) ?? []);
    this.#lookupMacs.delete(node);
    if (old !== undefined && old.agentUrl === agent.url && old.agentCaPem === agent.caPem && macs === old.macs) return;
    if (old === undefined)
      this.#log.info(
        { node, agentUrl: agent.url, certificatePinned: agent.caPem !== undefined },
        'agent address recorded',
      );
    else if (old.agentUrl !== agent.url || old.agentCaPem !== agent.caPem) {
      this.#log.info(
        { node, from: old.agentUrl, to: agent.url, certificateChanged: old.agentCaPem !== agent.caPem },
        'agent address changed',
      );
    }
    const changed = old === undefined || old.agentUrl !== agent.url || old.agentCaPem !== agent.caPem;
    await this.#save({
      node,
      agentUrl: agent.url,
      agentCaPem: agent.caPem,
      agentId: agentIdOf(agent.url, agent.caPem),
      macs,
      updatedAt: changed ? this.#now() : old.updatedAt,
    });
  }

  #put(r: AgentRecord): void {
    this.#remap(r.node, this.#records.get(r.node)?.macs ?? [], r.macs);
    this.#records.set(r.node, r);
  }

  /** MAC → node for a node whose list went from `before` to `after`. */
  #remap(node: string, before: readonly string[], after: readonly string[]): void {
    for (const m of before) if (!after.includes(m) && this.#macToNode.get(m) === node) this.#macToNode.delete(m);
    for (const m of after) this.#macToNode.set(m, node);
  }

  async #save(r: AgentRecord): Promise<void> {
    this.#put(r);
    const backend = this.#backend;
    if (backend === undefined) return;
    const prev = this.#writes.get(r.node) ?? Promise.resolve();
    const next = prev.then(() => backend.write(r));
    const tracked = next
      .catch((err: unknown) => {
        this.#log.error({ err, node: r.node }, 'could not persist the agent address');
      })
      .finally(() => {
        if (this.#writes.get(r.node) === tracked) this.#writes.delete(r.node);
      });
    this.#writes.set(r.node, tracked);
    await tracked;
  }
}

/** One JSON file per node in `dir` (`node-<node>.json`, replaced atomically). */
class AgentFiles implements AgentRecordBackend {
  readonly where: string;
  readonly #dir: string;
  readonly #log: Logger;

  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.where = dir;
    this.#log = log;
  }

  async loadAll(): Promise<readonly AgentRecord[]> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const out: AgentRecord[] = [];
    for (const name of await readdir(this.#dir)) {
      if (!name.startsWith('node-') || !name.endsWith('.json')) continue;
      const r = await this.#readFile(name);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  read(node: string): Promise<AgentRecord | undefined> {
    return this.#readFile(fileName(node));
  }

  write(r: AgentRecord): Promise<void> {
    return writeFileAtomic(path.join(this.#dir, fileName(r.node)), formatAgentRecord(r));
  }

  async #readFile(name: string): Promise<AgentRecord | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.#dir, name), 'utf8');
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT')
        this.#log.warn({ err, file: name }, 'could not read an agent address file');
      return undefined;
    }
    const r = parseAgentRecord(text);
    if (r === undefined) this.#log.warn({ file: name }, 'ignoring a malformed agent address file');
    return r;
  }
}
