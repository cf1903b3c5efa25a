/**
 * Per host, the time from its last DHCP ACK to its first script request after it: the gap in
 * which iPXE's "Configuring" step waits for IPv6 when nobody answers its router solicitation
 * (~15 s; well under a second with metalboot's router advertisements, decision 0011). Kept for
 * /debug/explain, the boot Events and a histogram, so the gain (or its loss) shows in
 * production. In memory only, bounded: the least recently acknowledged hosts go first.
 *
 * A script request is matched to a host by MAC (/boot/<mac>.ipxe) or by the address the ACK
 * gave (/boot.ipxe, which names no MAC). The first one after an ACK sets the time; later ones
 * (the NIC loop's /boot/<mac>.ipxe right after /boot.ipxe) keep it.
 */
import { Histogram, type Registry } from 'prom-client';
import type { Ipv4 } from '../net/ipv4.js';
import type { Ipv6 } from '../net/ipv6.js';

/** An address a lease gave: IPv4 (DHCP) or IPv6 (DHCPv6); the two never collide as map keys. */
export type LeaseIp = Ipv4 | Ipv6;
import type { Mac } from '../net/mac.js';
import type { BootClient } from './boot-client.js';

export interface AckToScript {
  /** Milliseconds from the ACK to the first script request after it. */
  readonly ms: number;
  /** The client the ACK went to (iPXE, as a rule). */
  readonly client: BootClient['kind'];
}

interface Entry {
  readonly ip: LeaseIp;
  readonly client: BootClient['kind'];
  readonly ackAt: number;
  scriptAt: number | undefined;
  /** Given to a host script's Event already. */
  reported: boolean;
}

export class BootTimings {
  readonly #byMac = new Map<Mac, Entry>();
  readonly #macByIp = new Map<LeaseIp, Mac>();
  readonly #max: number;
  readonly #histogram: Histogram | undefined;

  constructor(o: { readonly registry?: Registry; readonly maxHosts?: number } = {}) {
    this.#max = o.maxHosts ?? 10_000;
    this.#histogram =
      o.registry === undefined
        ? undefined
        : new Histogram({
            name: 'metalboot_boot_ack_to_script_seconds',
            help: "Seconds from a host's DHCP ACK to its first script request (iPXE's IPv6 wait sits here when no router advertisement answers it)",
            buckets: [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
            registers: [o.registry],
          });
  }

  /** A DHCP ACK left for `mac` with address `ip`. */
  acknowledged(mac: Mac, ip: LeaseIp, client: BootClient['kind'], at: number): void {
    const old = this.#byMac.get(mac);
    if (old !== undefined) {
      this.#byMac.delete(mac);
      if (this.#macByIp.get(old.ip) === mac) this.#macByIp.delete(old.ip);
    }
    this.#byMac.set(mac, { ip, client, ackAt: at, scriptAt: undefined, reported: false });
    this.#macByIp.set(ip, mac);
    while (this.#byMac.size > this.#max) {
      const [oldest, e] = this.#byMac.entries().next().value as [Mac, Entry];
      this.#byMac.delete(oldest);
      if (this.#macByIp.get(e.ip) === oldest) this.#macByIp.delete(e.ip);
    }
  }

  /**
   * A script was requested, by MAC (a host script) or only from an address (/boot.ipxe).
   * Returns the host's ACK-to-script time while it has not been given to a host script's
   * Event, marking it given when `mac` is set; undefined for a host with no ACK seen.
   */
  scriptRequested(req: { readonly mac?: Mac; readonly ip?: LeaseIp }, at: number): AckToScript | undefined {
    const mac = req.mac ?? (req.ip === undefined ? undefined : this.#macByIp.get(req.ip));
    const e = mac === undefined ? undefined : this.#byMac.get(mac);
    if (e === undefined || at < e.ackAt) return undefined;
    if (e.scriptAt === undefined) {
      e.scriptAt = at;
      this.#histogram?.observe((at - e.ackAt) / 1000);
    }
    if (e.reported) return undefined;
    if (req.mac !== undefined) e.reported = true;
    return { ms: e.scriptAt - e.ackAt, client: e.client };
  }

  /**
   * The MAC whose last ACK gave `ip`: how a request that knows only its client's address (an
   * image, a TFTP transfer, IPA's API calls) is put on a host's boot timeline.
   */
  macOf(ip: LeaseIp): Mac | undefined {
    return this.#macByIp.get(ip);
  }

  /** What /debug/explain shows for `mac`. */
  explain(mac: Mac): Record<string, unknown> | undefined {
    const e = this.#byMac.get(mac);
    if (e === undefined) return undefined;
    return {
      lastAck: new Date(e.ackAt).toISOString(),
      ackClient: e.client,
      firstScriptRequest: e.scriptAt === undefined ? null : new Date(e.scriptAt).toISOString(),
      ackToScriptSeconds: e.scriptAt === undefined ? null : (e.scriptAt - e.ackAt) / 1000,
    };
  }
}

/** "0.4 s after the DHCP ACK", for an Event. */
export function ackToScriptText(t: AckToScript): string {
  return `first script request ${(t.ms / 1000).toFixed(1)} s after the DHCP ACK`;
}
