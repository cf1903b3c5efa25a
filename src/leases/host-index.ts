/**
 * The in-memory index every DHCP, TFTP and HTTP decision reads. Sources replace their whole
 * set (files) or upsert/delete single hosts (Kubernetes); lookups are synchronous and O(1).
 *
 * Each source writes its own partition of a source kind: BareMetalHost manifests from files
 * and BareMetalHosts from the cluster are both `bmh` (one lookup level), but a file reload
 * replaces only the file partition and a Kubernetes relist only the cluster's. The partition
 * is invisible to lookups: it only scopes replaceAll, upsert and delete.
 *
 * Conflicts are never answered ambiguously:
 * - one MAC in two sources: the earlier source in SOURCE_ORDER wins, and the conflict is reported;
 * - one MAC on two hosts of the same source: neither is answered (`duplicate-mac`);
 * - one IP claimed by two different MACs: neither is answered (`ip-conflict`).
 */
import type { Mac } from '../net/mac.js';
import type { Ipv4 } from '../net/ipv4.js';
import { formatIpv4 } from '../net/ipv4.js';
import { formatIpv6, type Ipv6 } from '../net/ipv6.js';
import { SOURCE_ORDER, type HostRecord, type SourceKind } from './host.js';

export type HostLookup =
  | { readonly kind: 'host'; readonly host: HostRecord; readonly shadowed: readonly HostRecord[] }
  | {
      readonly kind: 'conflict';
      readonly reason: 'duplicate-mac' | 'ip-conflict';
      readonly hosts: readonly HostRecord[];
    }
  | { readonly kind: 'unknown' };

export interface Conflict {
  readonly kind: 'mac-in-two-sources' | 'duplicate-mac' | 'ip-conflict';
  readonly key: string;
  readonly owners: readonly string[];
}

/** The partition a source writes when it does not name one. */
export const DEFAULT_PARTITION = '';

const NONE: readonly HostRecord[] = Object.freeze([]);

export class HostIndex {
  /** kind → partition → id → record. */
  readonly #bySource = new Map<SourceKind, Map<string, Map<string, HostRecord>>>(
    SOURCE_ORDER.map((k) => [k, new Map()]),
  );
  readonly #byMac = new Map<Mac, HostRecord[]>();
  readonly #byIp = new Map<Ipv4, HostRecord[]>();
  readonly #byIp6 = new Map<Ipv6, HostRecord[]>();
  #generation = 0;

  /** Bumped on every change; caches keyed on it stay valid until the next change. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * The host of `mac` for DHCPv6: as lookup(), with address conflicts judged on the IPv6 lease
   * (an IPv4 conflict does not stop a host's IPv6 lease, nor the other way round).
   */
  lookup6(mac: Mac): HostLookup {
    const all = this.#byMac.get(mac);
    if (all === undefined || all.length === 0) return { kind: 'unknown' };
    if (all.length === 1) {
      // The common case, on every packet: one host, its address held by it alone.
      const host = all[0]!;
      const owners = host.lease6 === undefined ? undefined : this.#byIp6.get(host.lease6.ip);
      if (owners === undefined || owners.length === 1) return { kind: 'host', host, shadowed: NONE };
    }
    const firstKind = SOURCE_ORDER.find((k) => all.some((h) => h.origin.kind === k))!;
    const winners = all.filter((h) => h.origin.kind === firstKind);
    if (winners.length > 1) return { kind: 'conflict', reason: 'duplicate-mac', hosts: winners };
    const host = winners[0]!;
    const owners = host.lease6 === undefined ? undefined : this.#byIp6.get(host.lease6.ip);
    if (owners !== undefined && new Set(owners.map((h) => h.macs[0]!)).size > 1)
      return { kind: 'conflict', reason: 'ip-conflict', hosts: owners };
    return { kind: 'host', host, shadowed: all.filter((h) => h !== host) };
  }

  /** The one host whose IPv6 lease is `ip` (undefined when none, or when the address is in conflict). */
  hostByIp6(ip: Ipv6): HostRecord | undefined {
    const owners = this.#byIp6.get(ip);
    return owners?.length === 1 ? owners[0] : undefined;
  }

  /** True if any known host claims `ip` as its IPv6 lease: the DHCPv6 range must not hand it out. */
  isClaimed6(ip: Ipv6): boolean {
    return (this.#byIp6.get(ip)?.length ?? 0) > 0;
  }

  lookup(mac: Mac): HostLookup {
    const all = this.#byMac.get(mac);
    if (all === undefined || all.length === 0) return { kind: 'unknown' };
    if (all.length === 1) {
      // The common case, on every packet: one host, checked for a shared address without allocating.
      const host = all[0]!;
      const owners = host.lease === undefined ? undefined : this.#byIp.get(host.lease.ip);
      if (owners === undefined || owners.length === 1 || this.#ipOwners(host.lease!.ip).size === 1)
        return { kind: 'host', host, shadowed: NONE };
      return { kind: 'conflict', reason: 'ip-conflict', hosts: owners };
    }
    const firstKind = SOURCE_ORDER.find((k) => all.some((h) => h.origin.kind === k))!;
    const winners = all.filter((h) => h.origin.kind === firstKind);
    if (winners.length > 1) return { kind: 'conflict', reason: 'duplicate-mac', hosts: winners };
    const host = winners[0]!;
    if (host.lease !== undefined && this.#ipOwners(host.lease.ip).size > 1) {
      return { kind: 'conflict', reason: 'ip-conflict', hosts: this.#byIp.get(host.lease.ip)! };
    }
    return { kind: 'host', host, shadowed: all.filter((h) => h !== host) };
  }

  /** The one host whose lease is `ip` (undefined when none, or when the address is in conflict). */
  hostByIp(ip: Ipv4): HostRecord | undefined {
    const owners = this.#byIp.get(ip);
    return owners?.length === 1 ? owners[0] : undefined;
  }

  /** True if any known host (of any source) claims `ip`: the dynamic range must not hand it out. */
  isClaimed(ip: Ipv4): boolean {
    return (this.#byIp.get(ip)?.length ?? 0) > 0;
  }

  /** Every host of `kind` (all kinds when undefined), across partitions unless one is named. */
  hosts(kind?: SourceKind, partition?: string): HostRecord[] {
    const kinds = kind === undefined ? SOURCE_ORDER : [kind];
    return kinds.flatMap((k) => {
      const parts = this.#bySource.get(k)!;
      const maps =
        partition === undefined ? [...parts.values()] : [parts.get(partition) ?? new Map<string, HostRecord>()];
      return maps.flatMap((m) => [...m.values()]);
    });
  }

  size(kind: SourceKind, partition?: string): number {
    const parts = this.#bySource.get(kind)!;
    if (partition !== undefined) return parts.get(partition)?.size ?? 0;
    let n = 0;
    for (const m of parts.values()) n += m.size;
    return n;
  }

  /** Replaces every host of `kind` in `partition` with `records`; returns the conflicts the new set has. */
  replaceAll(kind: SourceKind, records: readonly HostRecord[], partition: string = DEFAULT_PARTITION): Conflict[] {
    const map = this.#partition(kind, partition);
    for (const h of map.values()) this.#unlink(h);
    map.clear();
    for (const r of records) {
      const prev = map.get(r.id);
      if (prev !== undefined) this.#unlink(prev);
      map.set(r.id, r);
      this.#link(r);
    }
    this.#generation++;
    return this.#conflictsOf(records);
  }

  upsert(record: HostRecord, partition: string = DEFAULT_PARTITION): Conflict[] {
    const map = this.#partition(record.origin.kind, partition);
    const prev = map.get(record.id);
    if (prev !== undefined) this.#unlink(prev);
    map.set(record.id, record);
    this.#link(record);
    this.#generation++;
    return this.#conflictsOf([record]);
  }

  delete(kind: SourceKind, id: string, partition: string = DEFAULT_PARTITION): boolean {
    const map = this.#bySource.get(kind)!.get(partition);
    const prev = map?.get(id);
    if (prev === undefined) return false;
    this.#unlink(prev);
    map!.delete(id);
    this.#generation++;
    return true;
  }

  #partition(kind: SourceKind, partition: string): Map<string, HostRecord> {
    const parts = this.#bySource.get(kind)!;
    let map = parts.get(partition);
    if (map === undefined) {
      map = new Map();
      parts.set(partition, map);
    }
    return map;
  }

  #link(h: HostRecord): void {
    for (const mac of new Set(h.macs)) push(this.#byMac, mac, h);
    if (h.lease !== undefined) push(this.#byIp, h.lease.ip, h);
    if (h.lease6 !== undefined) push(this.#byIp6, h.lease6.ip, h);
  }

  #unlink(h: HostRecord): void {
    for (const mac of new Set(h.macs)) remove(this.#byMac, mac, h);
    if (h.lease !== undefined) remove(this.#byIp, h.lease.ip, h);
    if (h.lease6 !== undefined) remove(this.#byIp6, h.lease6.ip, h);
  }

  #ipOwners(ip: Ipv4): Set<Mac> {
    return new Set((this.#byIp.get(ip) ?? []).map((h) => h.macs[0]!));
  }

  #conflictsOf(records: readonly HostRecord[]): Conflict[] {
    const out: Conflict[] = [];
    const seen = new Set<string>();
    const owners = (hs: readonly HostRecord[]) => hs.map((h) => `${h.origin.kind}:${h.origin.name} (${h.origin.from})`);
    for (const r of records) {
      for (const mac of r.macs) {
        const all = this.#byMac.get(mac) ?? [];
        if (all.length < 2 || seen.has(`mac:${mac}`)) continue;
        seen.add(`mac:${mac}`);
        const kinds = new Set(all.map((h) => h.origin.kind));
        out.push({
          kind: kinds.size === all.length ? 'mac-in-two-sources' : 'duplicate-mac',
          key: mac,
          owners: owners(all),
        });
      }
      if (r.lease !== undefined && this.#ipOwners(r.lease.ip).size > 1 && !seen.has(`ip:${r.lease.ip}`)) {
        seen.add(`ip:${r.lease.ip}`);
        out.push({ kind: 'ip-conflict', key: formatIpv4(r.lease.ip), owners: owners(this.#byIp.get(r.lease.ip)!) });
      }
      const l6 = r.lease6;
      if (l6 !== undefined && !seen.has(`ip6:${l6.ip}`)) {
        const all = this.#byIp6.get(l6.ip)!;
        if (new Set(all.map((h) => h.macs[0]!)).size > 1) {
          seen.add(`ip6:${l6.ip}`);
          out.push({ kind: 'ip-conflict', key: formatIpv6(l6.ip), owners: owners(all) });
        }
      }
    }
    return out;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}

function remove<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) return;
  const i = list.indexOf(v);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) m.delete(k);
}
