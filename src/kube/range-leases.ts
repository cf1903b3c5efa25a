/**
 * Dynamic-range leases shared by replicas through the Kubernetes API (decision 0010): one
 * coordination.k8s.io/v1 Lease per address, named `<prefix>-<a>-<b>-<c>-<d>`, holder = the
 * client's MAC (or "declined"), the exact expiry in an annotation. Every replica answers range
 * clients; an ACK leaves only once its Lease is written:
 * - a new binding is a create (409 AlreadyExists: another replica holds it) or an update on the
 *   resourceVersion this replica last saw (409 Conflict: it changed meanwhile); either refuses
 *   the ACK (LEASE_ERR_CONFLICT), so two replicas never hand one address to two hosts;
 * - every replica follows the Leases (ObjectFollower) into its pool, so offers avoid addresses
 *   others hold, and a replica that dies loses nothing another cannot read.
 * The same persist() contract as the file journal (lease-store.ts): resolve = durable.
 */
import { createHash } from 'node:crypto';
import {
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
  type V1LeaseList,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ReadinessCheck, Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';
import type { LeaseBackend } from '../leases/lease-store.js';
import { parseIpv6 } from '../net/ipv6.js';
import type { JournalRecord, RecordPool } from '../leases/pool.js';
import { httpStatusOf } from './api-errors.js';
import { ObjectFollower, type FollowedList } from './object-follower.js';

export const LEASE_LABEL = 'metalboot.io/dhcp-range';
const ADDRESS_ANNOTATION = 'metalboot.io/address';
const EXPIRES_ANNOTATION = 'metalboot.io/expires';
const DECLINED = 'declined';

/** A label value for `prefix`: itself when it fits (63 characters), else a hash of it. Pure. */
export function labelValueOf(prefix: string): string {
  return prefix.length <= 63 ? prefix : createHash('sha256').update(prefix).digest('hex').slice(0, 40);
}

/**
 * The Lease name of `ip` under `prefix` (a DNS subdomain): an IPv4 address with its dots as
 * dashes, an IPv6 address as its 32 hex digits (its compressed text could end in a dash). Pure.
 */
export function leaseNameOf(prefix: string, ip: string): string {
  const v6 = ip.includes(':') ? parseIpv6(ip) : undefined;
  if (v6 !== undefined) return `${prefix}-${v6.toString(16).padStart(32, '0')}`;
  return `${prefix}-${ip.replaceAll('.', '-')}`;
}

/** The record a stored Lease stands for; undefined when it is not one of ours. Pure. */
export function recordOfLease(l: V1Lease): JournalRecord | undefined {
  const ip = l.metadata?.annotations?.[ADDRESS_ANNOTATION];
  const expText = l.metadata?.annotations?.[EXPIRES_ANNOTATION];
  const holder = l.spec?.holderIdentity;
  if (ip === undefined || expText === undefined || holder === undefined) return undefined;
  const exp = expText === 'never' ? null : Number(expText);
  if (exp !== null && !Number.isSafeInteger(exp)) return undefined;
  if (holder === DECLINED) return exp === null ? undefined : { t: 'decline', ip, until: exp };
  return { t: 'bind', ip, mac: holder, exp };
}

/** The Lease that stores `rec` (bind or decline) at `now`. Pure. */
export function leaseOfRecord(
  prefix: string,
  namespace: string,
  rec: Exclude<JournalRecord, { t: 'free' }>,
  now: number,
  resourceVersion: string | undefined,
): V1Lease {
  const exp = rec.t === 'bind' ? rec.exp : rec.until;
  const seconds = exp === null ? undefined : Math.max(1, Math.min(2 ** 31 - 1, Math.ceil((exp - now) / 1000)));
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: leaseNameOf(prefix, rec.ip),
      namespace,
      labels: { [LEASE_LABEL]: labelValueOf(prefix), 'app.kubernetes.io/managed-by': 'metalboot' },
      annotations: { [ADDRESS_ANNOTATION]: rec.ip, [EXPIRES_ANNOTATION]: exp === null ? 'never' : String(exp) },
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    spec: {
      holderIdentity: rec.t === 'bind' ? rec.mac : DECLINED,
      renewTime: new V1MicroTime(now),
      ...(seconds === undefined ? {} : { leaseDurationSeconds: seconds }),
    },
  };
}

/** The calls this needs; kubeRangeLeaseApi() is the real one. Failures carry the HTTP status. */
export interface RangeLeaseApi {
  list(): Promise<FollowedList<V1Lease>>;
  get(name: string): Promise<V1Lease | undefined>;
  create(body: V1Lease): Promise<V1Lease>;
  replace(body: V1Lease): Promise<V1Lease>;
  /** Deletes `name` if it still has `resourceVersion`; a missing object is not an error. */
  delete(name: string, resourceVersion: string | undefined): Promise<void>;
}

export function kubeRangeLeaseApi(kc: KubeConfig, namespace: string, prefix: string): RangeLeaseApi {
  const api = kc.makeApiClient(CoordinationV1Api);
  const labelSelector = `${LEASE_LABEL}=${labelValueOf(prefix)}`;
  return {
    async list() {
      const l: V1LeaseList = await api.listNamespacedLease({ namespace, labelSelector });
      return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
    },
    async get(name) {
      try {
        return await api.readNamespacedLease({ namespace, name });
      } catch (err) {
        if (httpStatusOf(err) === 404) return undefined;
        throw err;
      }
    },
    create: (body) => api.createNamespacedLease({ namespace, body }),
    replace: (body) => api.replaceNamespacedLease({ namespace, name: body.metadata!.name!, body }),
    async delete(name, resourceVersion) {
      try {
        await api.deleteNamespacedLease({
          namespace,
          name,
          ...(resourceVersion === undefined ? {} : { body: { preconditions: { resourceVersion } } }),
        });
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw err;
      }
    },
  };
}

interface Known {
  readonly rec: JournalRecord;
  readonly resourceVersion: string;
}

export interface KubeRangeLeasesOptions {
  readonly api: RangeLeaseApi;
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly prefix: string;
  readonly pool: RecordPool;
  readonly now: () => number;
  readonly logger: Logger;
}

export class KubeRangeLeases implements Service, LeaseBackend {
  readonly name = 'leases';
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: KubeRangeLeasesOptions;
  readonly #log: Logger;
  /** The stored Lease of each address, as last listed, watched or written here. */
  readonly #known = new Map<string, Known>();
  readonly #follower: ObjectFollower<V1Lease>;
  /** Writes per address, one at a time, so a replace always carries the latest resourceVersion. */
  readonly #chains = new Map<string, Promise<void>>();

  constructor(o: KubeRangeLeasesOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'leases', store: 'kubernetes' });
    const ns = encodeURIComponent(o.namespace);
    this.#follower = new ObjectFollower<V1Lease>({
      what: `leases ${LEASE_LABEL}=${o.prefix}`,
      list: () => o.api.list(),
      watchPath: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`,
      watchQuery: { labelSelector: `${LEASE_LABEL}=${labelValueOf(o.prefix)}` },
      kubeConfig: o.kubeConfig,
      sync: (items) => this.#sync(items),
      change: (type, l) => this.#change(type, l),
      logger: this.#log,
    });
    this.readiness = [
      {
        name: 'range-leases',
        check: () =>
          this.#follower.synced
            ? { ok: true, detail: `${this.#known.size} range leases in namespace ${o.namespace}` }
            : {
                ok: false,
                detail: `waiting for the first list of range leases${this.#follower.lastError === undefined ? '' : ` (last error: ${this.#follower.lastError})`}`,
              },
      },
    ];
  }

  /** False until the stored leases are loaded: the range must not answer before. */
  get synced(): boolean {
    return this.#follower.synced;
  }

  async start(): Promise<void> {
    this.#follower.start();
    // Not fatal: DHCP for BareMetalHosts and static hosts does not need it, and the range stays
    // silent (sources-loading) until the first list arrives.
    if (!(await this.#follower.waitForSync(10_000)))
      this.#log.warn('range leases not loaded yet; range clients wait until they are');
  }

  async close(): Promise<void> {
    await this.#follower.close();
    await Promise.allSettled([...this.#chains.values()]);
  }

  persist(rec: JournalRecord): Promise<void> {
    const prev = this.#chains.get(rec.ip) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.#write(rec));
    const tracked = next.finally(() => {
      if (this.#chains.get(rec.ip) === tracked) this.#chains.delete(rec.ip);
    });
    this.#chains.set(rec.ip, tracked);
    return tracked;
  }

  async #write(rec: JournalRecord): Promise<void> {
    const name = leaseNameOf(this.#o.prefix, rec.ip);
    if (rec.t === 'free') {
      // Only the version this replica knows: a Lease it never saw is not its to delete.
      const k = this.#known.get(rec.ip);
      if (k === undefined) return;
      await this.#o.api.delete(name, k.resourceVersion);
      this.#known.delete(rec.ip);
      return;
    }
    // Two tries: the first on what this replica knows, the second on a fresh read after a 409.
    let known = this.#known.get(rec.ip);
    for (let attempt = 0; ; attempt++) {
      this.#refuseIfHeld(rec, known);
      const body = leaseOfRecord(this.#o.prefix, this.#o.namespace, rec, this.#o.now(), known?.resourceVersion);
      try {
        const stored = known === undefined ? await this.#o.api.create(body) : await this.#o.api.replace(body);
        this.#remember(stored);
        if (rec.t === 'bind') await this.#dropOtherBindings(rec);
        return;
      } catch (err) {
        if (httpStatusOf(err) !== 409 || attempt >= 1) throw err;
        const fresh = await this.#o.api.get(name);
        if (fresh === undefined) {
          this.#known.delete(rec.ip);
          known = undefined;
        } else {
          this.#remember(fresh);
          known = this.#known.get(rec.ip);
        }
      }
    }
  }

  /** Another host's live lease on the address (written by another replica): no ACK. */
  #refuseIfHeld(rec: Exclude<JournalRecord, { t: 'free' }>, known: Known | undefined): void {
    if (known === undefined || known.rec.t !== 'bind') return;
    const live = known.rec.exp === null || known.rec.exp > this.#o.now();
    if (!live) return;
    if (rec.t === 'bind' && known.rec.mac === rec.mac) return;
    // Put the holder back into the pool: the local commit is undone by the caller.
    this.#o.pool.restore(known.rec);
    throw new MetalbootError(
      'LEASE_ERR_CONFLICT',
      `${rec.ip} is held by ${known.rec.mac} (a lease another replica wrote)`,
    );
  }

  /** A MAC that moved to another address gives up the old one's Lease. */
  async #dropOtherBindings(rec: Extract<JournalRecord, { t: 'bind' }>): Promise<void> {
    for (const [ip, k] of this.#known) {
      if (ip === rec.ip || k.rec.t !== 'bind' || k.rec.mac !== rec.mac) continue;
      try {
        await this.#o.api.delete(leaseNameOf(this.#o.prefix, ip), k.resourceVersion);
        this.#known.delete(ip);
      } catch (err) {
        // Harmless: the old Lease expires, and the pool already moved the MAC.
        this.#log.warn({ err, ip, mac: rec.mac }, 'could not delete the old range lease of a moved client');
      }
    }
  }

  #remember(l: V1Lease): JournalRecord | undefined {
    const rec = recordOfLease(l);
    const rv = l.metadata?.resourceVersion;
    if (rec === undefined || rv === undefined) return undefined;
    this.#known.set(rec.ip, { rec, resourceVersion: rv });
    return rec;
  }

  #sync(items: readonly V1Lease[]): void {
    const before = new Set(this.#known.keys());
    this.#known.clear();
    let outside = 0;
    for (const l of items) {
      const rec = this.#remember(l);
      if (rec === undefined) continue;
      before.delete(rec.ip);
      if (!this.#o.pool.restore(rec)) outside++;
    }
    // Addresses whose Lease went away while the watch was down.
    for (const ip of before) this.#o.pool.restore({ t: 'free', ip });
    if (outside > 0) this.#log.warn({ leases: outside }, 'range leases outside the configured ranges ignored');
    this.#log.info({ leases: this.#known.size }, 'range leases loaded from the Kubernetes API');
  }

  #change(type: 'ADDED' | 'MODIFIED' | 'DELETED', l: V1Lease): void {
    const ip = l.metadata?.annotations?.[ADDRESS_ANNOTATION];
    if (ip === undefined) return;
    if (type === 'DELETED') {
      const k = this.#known.get(ip);
      // A delete of an older version than one written here since is not news.
      if (k !== undefined && k.resourceVersion !== l.metadata?.resourceVersion && this.#chains.has(ip)) return;
      this.#known.delete(ip);
      this.#o.pool.restore({ t: 'free', ip });
      return;
    }
    if (this.#chains.has(ip)) {
      // A write of this address is in flight here: its answer is what counts; remember the
      // version so the write's retry sees it.
      this.#remember(l);
      return;
    }
    const rec = this.#remember(l);
    if (rec !== undefined) this.#o.pool.restore(rec);
  }
}
