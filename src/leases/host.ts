/**
 * A known host: what a lease source (BareMetalHost, static list) says about one machine.
 * Sources convert their input into HostRecords; the index answers lookups from them.
 */
import type { Mac } from '../net/mac.js';
import type { Ipv4 } from '../net/ipv4.js';
import type { Ipv6 } from '../net/ipv6.js';

export type SourceKind = 'bmh' | 'static';

/** Lease sources in lookup order: the first match wins. */
export const SOURCE_ORDER: readonly SourceKind[] = ['bmh', 'static'];

export interface LeaseParams {
  readonly ip: Ipv4;
  readonly prefix: number;
  readonly gateway: Ipv4 | undefined;
  readonly dns: readonly Ipv4[];
  readonly ntp: readonly Ipv4[];
  readonly hostname: string | undefined;
}

/** A host's DHCPv6 lease: its address, and the DNS and NTP servers of IPv6 (routes come from router advertisements). */
export interface Lease6Params {
  readonly ip: Ipv6;
  readonly prefix: number;
  readonly dns: readonly Ipv6[];
  readonly ntp: readonly Ipv6[];
  readonly hostname: string | undefined;
}

export interface HostOrigin {
  readonly kind: SourceKind;
  /** `namespace/name` of a BareMetalHost, or `hosts:<where>` of a static entry. */
  readonly name: string;
  /** Where it came from: a file path, `--dhcp-hosts`, or `kubernetes`. */
  readonly from: string;
}

export interface HostRecord {
  /** Unique within its source (BMH namespace/name, static MAC). */
  readonly id: string;
  readonly origin: HostOrigin;
  /** The MACs this host answers for: the boot MAC first, then inspected NICs. */
  readonly macs: readonly Mac[];
  /** The lease to give, or undefined with `problem` saying why the host cannot be served. */
  readonly lease: LeaseParams | undefined;
  readonly problem: string | undefined;
  /** The DHCPv6 lease (absent: the host has no IPv6 address, and `problem6` says why when known). */
  readonly lease6?: Lease6Params;
  readonly problem6?: string;
  /** BareMetalHost status.provisioning.state ('' when unknown; undefined for static hosts). */
  readonly provisioningState: string | undefined;
  /** False for a host that gets a lease but must not network-boot. */
  readonly netboot: boolean;
  /** BareMetalHost spec.bootMode (`UEFI`, `UEFISecureBoot`, `legacy`); undefined when not set. */
  readonly bootMode?: string;
  /**
   * The `secure-boot` annotation: true or false overrides spec.bootMode and the configured
   * default; undefined when absent (boot/secure-boot.ts chooses the chain).
   */
  readonly secureBoot?: boolean;
}

/** Why a host gets a lease of neither family (what to warn about), or undefined when it gets one. */
export function unservable(h: HostRecord): string | undefined {
  return h.lease !== undefined || h.lease6 !== undefined ? undefined : h.problem;
}
