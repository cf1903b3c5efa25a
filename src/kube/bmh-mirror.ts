/**
 * The cluster's BareMetalHosts mirrored into the host index: a list replaces the cluster
 * partition, watch events upsert and delete, and each BareMetalHost's reference is kept for its
 * Events. Pure apart from the index it writes; bmh-watcher.ts feeds it.
 */
import type { Logger } from 'pino';
import { bmhId, bmhToHost, type BareMetalHostObject } from '../leases/bmh.js';
import type { Conflict, HostIndex } from '../leases/host-index.js';
import { unservable, type HostRecord } from '../leases/host.js';

/** A BareMetalHost as the API serves it: what bmhToHost reads, plus the identity Events need. */
export type KubeBareMetalHost = BareMetalHostObject & {
  readonly metadata?: BareMetalHostObject['metadata'] & { readonly uid?: string };
};

/** What an Event's involvedObject needs. */
export interface BmhRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
}

export type MirrorChange =
  | {
      readonly kind: 'upsert';
      readonly id: string;
      readonly host: HostRecord;
      readonly added: boolean;
      readonly problemChanged: boolean;
      readonly conflicts: readonly Conflict[];
    }
  | { readonly kind: 'delete'; readonly id: string; readonly existed: boolean }
  /** Not servable at all (no usable boot MAC): removed from the index if it was there. */
  | { readonly kind: 'skip'; readonly id: string; readonly reason: string; readonly removed: boolean };

export interface MirrorReplace {
  readonly hosts: number;
  readonly added: number;
  readonly removed: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
  readonly problems: readonly { readonly id: string; readonly problem: string }[];
  readonly conflicts: readonly Conflict[];
}

export interface BmhMirrorOptions {
  readonly annotationPrefix: string;
  /** The index partition this mirror owns (default `kubernetes`). */
  readonly partition?: string;
  /** HostOrigin.from of its records (default `kubernetes`). */
  readonly from?: string;
}

/**
 * Keeps one partition of the index equal to the BareMetalHosts the API server has, using the
 * same conversion as manifest files (bmhToHost). Synchronous: every change is visible to the
 * next packet.
 */
export class BmhMirror {
  readonly #index: HostIndex;
  readonly #prefix: string;
  readonly #partition: string;
  readonly #from: string;
  readonly #refs = new Map<string, BmhRef>();
  readonly #records = new Map<string, HostRecord>();

  constructor(index: HostIndex, o: BmhMirrorOptions) {
    this.#index = index;
    this.#prefix = o.annotationPrefix;
    this.#partition = o.partition ?? 'kubernetes';
    this.#from = o.from ?? 'kubernetes';
  }

  get partition(): string {
    return this.#partition;
  }

  /** Hosts in the index from this mirror. */
  get size(): number {
    return this.#records.size;
  }

  /** The object behind a host id (`namespace/name`), if the cluster has it. */
  ref(id: string): BmhRef | undefined {
    return this.#refs.get(id);
  }

  /** The cluster object of a host record this mirror made; undefined for any other host. */
  refFor(host: HostRecord): BmhRef | undefined {
    if (host.origin.kind !== 'bmh' || host.origin.from !== this.#from) return undefined;
    return this.#refs.get(host.id);
  }

  /** Replaces the whole partition with a list's items: hosts that vanished meanwhile go. */
  replace(items: readonly KubeBareMetalHost[]): MirrorReplace {
    const records: HostRecord[] = [];
    const skipped: { id: string; reason: string }[] = [];
    const refs = new Map<string, BmhRef>();
    for (const obj of items) {
      const id = bmhId(obj);
      const r = bmhToHost(obj, { annotationPrefix: this.#prefix, from: this.#from });
      if (r.kind === 'skip') {
        skipped.push({ id, reason: r.reason });
        continue;
      }
      records.push(r.host);
      refs.set(id, refOf(obj));
    }
    const before = new Set(this.#records.keys());
    const conflicts = this.#index.replaceAll('bmh', records, this.#partition);
    this.#records.clear();
    this.#refs.clear();
    for (const h of records) this.#records.set(h.id, h);
    for (const [id, ref] of refs) this.#refs.set(id, ref);
    let added = 0;
    for (const id of this.#records.keys()) if (!before.delete(id)) added++;
    return {
      hosts: this.#records.size,
      added,
      removed: before.size,
      skipped,
      problems: records.filter((h) => unservable(h) !== undefined).map((h) => ({ id: h.id, problem: unservable(h)! })),
      conflicts,
    };
  }

  /** Applies one ADDED, MODIFIED or DELETED watch event. */
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeBareMetalHost): MirrorChange {
    const id = bmhId(obj);
    if (type === 'DELETED') return { kind: 'delete', id, existed: this.#remove(id) };
    const r = bmhToHost(obj, { annotationPrefix: this.#prefix, from: this.#from });
    if (r.kind === 'skip') return { kind: 'skip', id, reason: r.reason, removed: this.#remove(id) };
    const prev = this.#records.get(id);
    const conflicts = this.#index.upsert(r.host, this.#partition);
    this.#records.set(id, r.host);
    this.#refs.set(id, refOf(obj));
    return {
      kind: 'upsert',
      id,
      host: r.host,
      added: prev === undefined,
      problemChanged: prev?.problem !== r.host.problem,
      conflicts,
    };
  }

  #remove(id: string): boolean {
    this.#refs.delete(id);
    if (!this.#records.delete(id)) return false;
    this.#index.delete('bmh', id, this.#partition);
    return true;
  }
}

function refOf(obj: KubeBareMetalHost): BmhRef {
  return { namespace: obj.metadata?.namespace ?? 'default', name: obj.metadata?.name ?? '', uid: obj.metadata?.uid };
}

/** Logs what a relist changed, once per host problem (the shell's logger, the core's words). */
export function logReplace(log: Logger, r: MirrorReplace): void {
  for (const s of r.skipped) log.warn({ host: s.id, reason: s.reason }, 'baremetalhost skipped');
  for (const p of r.problems) log.warn({ host: p.id, problem: p.problem }, 'host cannot be served');
  for (const c of r.conflicts) log.error({ conflict: c.kind, key: c.key, owners: c.owners }, 'lease conflict');
}

// ---------------------------------------------------------------- status
