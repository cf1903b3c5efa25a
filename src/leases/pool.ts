/**
 * The dynamic range: address allocation for hosts no other source knows. Pure in-memory state;
 * every change that must survive a restart returns a JournalRecord, which the DHCP shell makes
 * durable (lease-journal.ts) before the ACK leaves.
 *
 * - No ICMP ping-check before offering (it costs dnsmasq seconds per first offer); a DECLINE
 *   quarantines the address instead (RFC 2131 §3.1 step 5).
 * - An OFFER holds the address for `offerHoldMs` in memory only; only an ACK is a commitment.
 * - Addresses claimed by BareMetalHosts or static hosts, and the server's own address, are never
 *   handed out, even when they sit inside a range.
 * - One pool for either family: `LeasePool` (IPv4, DHCPv4) and `LeasePool6` (IPv6, DHCPv6) differ
 *   only in the address space they count through. DHCPv6 binds per host (MAC), not per DUID and
 *   IAID: one machine keeps one address through firmware, iPXE and the OS.
 */
import type { Mac } from '../net/mac.js';

/**
 * Whom a range address is bound to: a MAC, or for a DHCPv6 client that gives no MAC (no option
 * 79, no EUI-64 link-local address, no DUID-LL/LLT) its DUID, as `duid-<hex>`.
 */
export type DuidKey = string & { readonly __brand: 'DuidKey' };
export type ClientKey = Mac | DuidKey;

/** The range key of a DUID (bytes). */
export function duidKey(duid: Uint8Array): DuidKey {
  return `duid-${Buffer.from(duid).toString('hex')}` as DuidKey;
}
import type { Ipv4 } from '../net/ipv4.js';
import type { Ipv6 } from '../net/ipv6.js';
import { INFINITE_LEASE, IPV4_SPACE, IPV6_SPACE, type AddressRange, type AddressSpace } from './range.js';

export type JournalRecord =
  | { readonly t: 'bind'; readonly ip: string; readonly mac: string; readonly exp: number | null }
  | { readonly t: 'free'; readonly ip: string }
  | { readonly t: 'decline'; readonly ip: string; readonly until: number };

interface Slot {
  kind: 'offered' | 'bound' | 'declined';
  mac: ClientKey | undefined;
  /** ms since epoch; Infinity for an infinite lease. */
  expiresAt: number;
}

export interface PoolLease<A = Ipv4> {
  readonly ip: A;
  readonly mac: ClientKey;
  readonly expiresAt: number;
  readonly leaseSeconds: number;
  readonly range: AddressRange<A>;
}

export interface PoolOptions<A = Ipv4> {
  readonly ranges: readonly AddressRange<A>[];
  readonly isClaimed: (ip: A) => boolean;
  readonly serverIp: A;
  readonly offerHoldMs?: number;
  readonly declineQuarantineMs?: number;
}

/** What commit() changed, so that revert() can put it back when its record cannot be written. */
export interface CommitUndo<A = Ipv4> {
  readonly ip: A;
  /** The slot commit() set: revert() does nothing once something else has replaced it. */
  readonly set: Slot;
  readonly before: Slot | undefined;
  /** The MAC's previous address, and its slot, when commit() moved the MAC. */
  readonly other: A | undefined;
  readonly otherBefore: Slot | undefined;
}

export type CommitResult<A = Ipv4> =
  | {
      readonly ok: true;
      readonly lease: PoolLease<A>;
      readonly record: JournalRecord;
      readonly undo: CommitUndo<A>;
      /**
       * A renewal: until when this MAC already held this address (ms; Infinity for an infinite
       * lease). What the journal holds, since a bind whose record failed is reverted.
       */
      readonly heldUntil: number | undefined;
    }
  | { readonly ok: false; readonly reason: 'not-in-range' | 'address-taken' | 'address-claimed' | 'address-declined' };

/** What the journal and the shared-lease backends need of a pool of either family. */
export interface RecordPool {
  restore(rec: JournalRecord): boolean;
  snapshot(now: number): JournalRecord[];
}

export class AddressPool<A extends number | bigint> implements RecordPool {
  readonly #space: AddressSpace<A>;
  readonly #ranges: readonly AddressRange<A>[];
  readonly #isClaimed: (ip: A) => boolean;
  readonly #serverIp: A;
  readonly #offerHoldMs: number;
  readonly #quarantineMs: number;
  readonly #slots = new Map<A, Slot>();
  readonly #byMac = new Map<ClientKey, A>();
  /**
   * Offers in the order they expire (one hold time for all): swept as they expire, so a flood
   * of DISCOVERs from new MACs costs memory for the offers alive now, not for every MAC seen.
   */
  #offers: { readonly ip: A; readonly slot: Slot }[] = [];
  #offersHead = 0;
  #cursor = 0;

  constructor(space: AddressSpace<A>, o: PoolOptions<A>) {
    this.#space = space;
    this.#ranges = o.ranges;
    this.#isClaimed = o.isClaimed;
    this.#serverIp = o.serverIp;
    this.#offerHoldMs = o.offerHoldMs ?? 60_000;
    this.#quarantineMs = o.declineQuarantineMs ?? 600_000;
  }

  get enabled(): boolean {
    return this.#ranges.length > 0;
  }

  rangeOf(ip: A): AddressRange<A> | undefined {
    return this.#ranges.find((r) => this.#space.contains(r, ip));
  }

  /**
   * Applies a journal record while loading (no validation beyond shape: the journal is ours).
   * False for an address no range holds any more (the range was shrunk or moved): it is not
   * restored, and the next compaction drops it from the journal.
   */
  restore(rec: JournalRecord): boolean {
    const ip = this.#space.parse(rec.ip);
    if (ip === undefined || this.rangeOf(ip) === undefined) return false;
    this.#clear(ip);
    if (rec.t === 'bind') this.#set(ip, { kind: 'bound', mac: rec.mac as ClientKey, expiresAt: rec.exp ?? Infinity });
    else if (rec.t === 'decline') this.#set(ip, { kind: 'declined', mac: undefined, expiresAt: rec.until });
    return true;
  }

  /** The live (bound, unexpired) lease of `mac`, if any. */
  leaseOf(mac: ClientKey, now: number): PoolLease<A> | undefined {
    const ip = this.#byMac.get(mac);
    if (ip === undefined) return undefined;
    const s = this.#slots.get(ip)!;
    if (s.kind !== 'bound' || s.expiresAt <= now) return undefined;
    return this.#lease(ip, mac, s.expiresAt);
  }

  /** True if `mac` has any record here (bound or offered), even expired: RFC 2131 §4.3.2 "has a record". */
  hasRecord(mac: ClientKey): boolean {
    return this.#byMac.has(mac);
  }

  /**
   * Chooses an address for a DISCOVER: the client's current binding, else its requested address
   * if free, else the next free address. Holds it for the offer time. Undefined when exhausted.
   */
  offer(mac: ClientKey, requested: A | undefined, now: number): PoolLease<A> | undefined {
    this.#sweepOffers(now);
    const current = this.#byMac.get(mac);
    if (current !== undefined && this.#usableBy(current, mac, now)) return this.#hold(current, mac, now);
    if (requested !== undefined && this.rangeOf(requested) !== undefined && this.#usableBy(requested, mac, now))
      return this.#hold(requested, mac, now);
    const free = this.#nextFree(mac, now);
    return free === undefined ? undefined : this.#hold(free, mac, now);
  }

  /** Binds `ip` to `mac` for a REQUEST; the returned record must be durable before the ACK is sent. */
  commit(mac: ClientKey, ip: A, now: number): CommitResult<A> {
    const range = this.rangeOf(ip);
    if (range === undefined) return { ok: false, reason: 'not-in-range' };
    if (this.#isClaimed(ip) || ip === this.#serverIp) return { ok: false, reason: 'address-claimed' };
    const s = this.#slots.get(ip);
    if (s?.kind === 'declined' && s.expiresAt > now) return { ok: false, reason: 'address-declined' };
    if (s !== undefined && s.mac !== mac && s.kind !== 'declined' && s.expiresAt > now)
      return { ok: false, reason: 'address-taken' };
    const expiresAt = range.leaseSeconds === INFINITE_LEASE ? Infinity : now + range.leaseSeconds * 1000;
    const old = this.#byMac.get(mac);
    const other = old !== undefined && old !== ip ? old : undefined;
    const before = s === undefined ? undefined : { ...s };
    const otherBefore = other === undefined ? undefined : this.#slots.get(other);
    if (other !== undefined) this.#clear(other);
    this.#clear(ip);
    const set: Slot = { kind: 'bound', mac, expiresAt };
    this.#set(ip, set);
    const renewal = before !== undefined && before.kind === 'bound' && before.mac === mac && before.expiresAt > now;
    return {
      ok: true,
      lease: this.#lease(ip, mac, expiresAt),
      record: { t: 'bind', ip: this.#space.format(ip), mac, exp: Number.isFinite(expiresAt) ? expiresAt : null },
      undo: { ip, set, before, other, otherBefore: otherBefore === undefined ? undefined : { ...otherBefore } },
      heldUntil: renewal ? before.expiresAt : undefined,
    };
  }

  /** Undoes a commit() whose record could not be made durable, unless its slot changed since. */
  revert(u: CommitUndo<A>): void {
    if (this.#slots.get(u.ip) !== u.set) return;
    this.#clear(u.ip);
    if (u.other !== undefined && u.otherBefore !== undefined && !this.#slots.has(u.other))
      this.#set(u.other, { ...u.otherBefore });
    if (u.before !== undefined) this.#set(u.ip, { ...u.before });
  }

  release(mac: ClientKey, ip: A): JournalRecord | undefined {
    const s = this.#slots.get(ip);
    if (s === undefined || s.mac !== mac || s.kind === 'declined') return undefined;
    this.#clear(ip);
    return { t: 'free', ip: this.#space.format(ip) };
  }

  /** A client found `ip` in use by someone else: quarantine it. */
  decline(mac: ClientKey, ip: A, now: number): JournalRecord | undefined {
    if (this.rangeOf(ip) === undefined) return undefined;
    const s = this.#slots.get(ip);
    if (s !== undefined && s.mac !== mac && s.kind === 'bound' && s.expiresAt > now) return undefined;
    this.#clear(ip);
    const until = now + this.#quarantineMs;
    this.#set(ip, { kind: 'declined', mac: undefined, expiresAt: until });
    return { t: 'decline', ip: this.#space.format(ip), until };
  }

  /** Live bound leases and quarantines: what a compacted journal must keep. */
  snapshot(now: number): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (const [ip, s] of this.#slots) {
      if (s.expiresAt <= now) continue;
      if (s.kind === 'bound')
        out.push({
          t: 'bind',
          ip: this.#space.format(ip),
          mac: s.mac!,
          exp: Number.isFinite(s.expiresAt) ? s.expiresAt : null,
        });
      else if (s.kind === 'declined') out.push({ t: 'decline', ip: this.#space.format(ip), until: s.expiresAt });
    }
    return out;
  }

  stats(now: number): { size: number; bound: number; offered: number; declined: number } {
    let bound = 0,
      offered = 0,
      declined = 0;
    for (const s of this.#slots.values()) {
      if (s.expiresAt <= now) continue;
      if (s.kind === 'bound') bound++;
      else if (s.kind === 'offered') offered++;
      else declined++;
    }
    const size = this.#ranges.reduce((n, r) => n + this.#space.size(r), 0);
    return { size, bound, offered, declined };
  }

  #usableBy(ip: A, mac: ClientKey, now: number): boolean {
    if (this.#isClaimed(ip) || ip === this.#serverIp) return false;
    const s = this.#slots.get(ip);
    if (s === undefined || s.expiresAt <= now) return true;
    return s.kind !== 'declined' && s.mac === mac;
  }

  #nextFree(mac: ClientKey, now: number): A | undefined {
    const total = this.#ranges.reduce((n, r) => n + this.#space.size(r), 0);
    for (let k = 0; k < total; k++) {
      const ip = this.#nth((this.#cursor + k) % total);
      if (this.#usableBy(ip, mac, now)) {
        this.#cursor = (this.#cursor + k + 1) % total;
        return ip;
      }
    }
    return undefined;
  }

  #nth(n: number): A {
    for (const r of this.#ranges) {
      const size = this.#space.size(r);
      if (n < size) return this.#space.nth(r, n);
      n -= size;
    }
    throw new RangeError('address index out of range');
  }

  #hold(ip: A, mac: ClientKey, now: number): PoolLease<A> {
    const s = this.#slots.get(ip);
    if (s !== undefined && s.kind === 'bound' && s.mac === mac && s.expiresAt > now)
      return this.#lease(ip, mac, s.expiresAt);
    const old = this.#byMac.get(mac);
    if (old !== undefined && old !== ip && this.#slots.get(old)?.kind === 'offered') this.#clear(old);
    this.#clear(ip);
    const slot: Slot = { kind: 'offered', mac, expiresAt: now + this.#offerHoldMs };
    this.#set(ip, slot);
    this.#offers.push({ ip, slot });
    const range = this.rangeOf(ip)!;
    return { ip, mac, expiresAt: now + range.leaseSeconds * 1000, leaseSeconds: range.leaseSeconds, range };
  }

  /** Addresses and MACs the pool keeps state for (live or expired): what its memory grows with. */
  get tracked(): { readonly addresses: number; readonly macs: number } {
    return { addresses: this.#slots.size, macs: this.#byMac.size };
  }

  /** Forgets offers that expired and were not taken up (a slot replaced since is not theirs). */
  #sweepOffers(now: number): void {
    const q = this.#offers;
    let h = this.#offersHead;
    while (h < q.length && q[h]!.slot.expiresAt <= now) {
      const { ip, slot } = q[h]!;
      if (this.#slots.get(ip) === slot) this.#clear(ip);
      h++;
    }
    if (h > 1024 && h * 2 > q.length) {
      this.#offers = q.slice(h);
      h = 0;
    }
    this.#offersHead = h;
  }

  #lease(ip: A, mac: ClientKey, expiresAt: number): PoolLease<A> {
    const range = this.rangeOf(ip)!;
    return { ip, mac, expiresAt, leaseSeconds: range.leaseSeconds, range };
  }

  #set(ip: A, s: Slot): void {
    this.#slots.set(ip, s);
    if (s.mac !== undefined) {
      const prev = this.#byMac.get(s.mac);
      if (prev !== undefined && prev !== ip) {
        const ps = this.#slots.get(prev);
        // An older expired binding of the same MAC no longer speaks for it.
        if (ps !== undefined && ps.mac === s.mac) this.#slots.delete(prev);
      }
      this.#byMac.set(s.mac, ip);
    }
  }

  #clear(ip: A): void {
    const s = this.#slots.get(ip);
    if (s === undefined) return;
    this.#slots.delete(ip);
    if (s.mac !== undefined && this.#byMac.get(s.mac) === ip) this.#byMac.delete(s.mac);
  }
}

/** The IPv4 pool of DHCPv4's ranges. */
export class LeasePool extends AddressPool<Ipv4> {
  constructor(o: PoolOptions<Ipv4>) {
    super(IPV4_SPACE, o);
  }
}

/** The IPv6 pool of DHCPv6's ranges. */
export class LeasePool6 extends AddressPool<Ipv6> {
  constructor(o: PoolOptions<Ipv6>) {
    super(IPV6_SPACE, o);
  }
}
