/**
 * BareMetalHost → HostRecord, the one conversion used for manifests read from files and for
 * objects from the Kubernetes API. Pure.
 *
 * Annotations (prefix configurable, default `metal3.vcluster.com/`):
 *   ip-address    IPv4 CIDR (the DHCPv4 lease address and prefix), as vCP defines it; an IPv6
 *                 CIDR here makes an IPv6-only host (decision 0012)
 *   ipv6-address  IPv6 CIDR (the DHCPv6 lease): with ip-address, a dual-stack host
 *   gateway       IPv4 router; default the first host of the CIDR (IPv6 routes come from
 *                 router advertisements)
 *   dns-servers   comma list, IPv4 and IPv6 (each family goes to its own DHCP)
 *   ntp-servers   comma list, IPv4 and IPv6
 *   netboot       "false": lease only, no boot file
 *   secure-boot   "true" or "false": the UEFI Secure Boot chain (signed shim and GRUB) or not,
 *                 whatever spec.bootMode says (boot/secure-boot.ts)
 */
import { parseMac, type Mac } from '../net/mac.js';
import { firstHostOf, parseIpv4, parseIpv4Cidr, type Ipv4 } from '../net/ipv4.js';
import { parseIpv6, parseIpv6Cidr, type Ipv6, type Ipv6Cidr } from '../net/ipv6.js';
import type { HostRecord, Lease6Params } from './host.js';

/** The parts of a metal3.io/v1alpha1 BareMetalHost that metalboot reads. */
export interface BareMetalHostObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly resourceVersion?: string;
  };
  readonly spec?: {
    readonly bootMACAddress?: string;
    readonly online?: boolean;
    /** `UEFI` (the default), `UEFISecureBoot` or `legacy`. */
    readonly bootMode?: string;
  };
  readonly status?: {
    readonly provisioning?: { readonly state?: string };
    readonly hardware?: { readonly nics?: readonly { readonly mac?: string; readonly name?: string }[] };
  };
}

export interface BmhConversion {
  readonly annotationPrefix: string;
  /** Where the object came from (file path or `kubernetes`), for logs and /debug/explain. */
  readonly from: string;
}

export type BmhResult =
  | { readonly kind: 'host'; readonly host: HostRecord }
  | { readonly kind: 'skip'; readonly reason: string };

export function isBareMetalHost(doc: unknown): doc is BareMetalHostObject {
  if (doc === null || typeof doc !== 'object') return false;
  const d = doc as BareMetalHostObject;
  return d.kind === 'BareMetalHost' && typeof d.apiVersion === 'string' && d.apiVersion.startsWith('metal3.io/');
}

export function bmhId(obj: BareMetalHostObject): string {
  return `${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? ''}`;
}

/** A comma list of addresses of both families, split by family. */
function ipList(text: string | undefined): { v4: Ipv4[]; v6: Ipv6[] } | string {
  const out = { v4: [] as Ipv4[], v6: [] as Ipv6[] };
  if (text === undefined || text.trim() === '') return out;
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const ip = parseIpv4(part);
    const ip6 = ip === undefined ? parseIpv6(part) : undefined;
    if (ip !== undefined) out.v4.push(ip);
    else if (ip6 !== undefined) out.v6.push(ip6);
    else return `"${part}" is not an IP address`;
  }
  return out;
}

/** The `secure-boot` annotation: "true"/"false" (any case) set it; anything else leaves it unset. */
function secureBootAnnotation(text: string | undefined): { secureBoot?: boolean } {
  const v = text?.trim().toLowerCase();
  return v === 'true' ? { secureBoot: true } : v === 'false' ? { secureBoot: false } : {};
}

export function bmhToHost(obj: BareMetalHostObject, opts: BmhConversion): BmhResult {
  const name = obj.metadata?.name;
  if (name === undefined || name === '') return { kind: 'skip', reason: 'metadata.name is missing' };
  const id = bmhId(obj);
  const bootMac = parseMac(obj.spec?.bootMACAddress ?? '');
  if (bootMac === undefined) {
    return {
      kind: 'skip',
      reason: obj.spec?.bootMACAddress
        ? `spec.bootMACAddress "${obj.spec.bootMACAddress}" is not a MAC address`
        : 'spec.bootMACAddress is missing',
    };
  }
  const macs: Mac[] = [bootMac];
  for (const nic of obj.status?.hardware?.nics ?? []) {
    const m = parseMac(nic.mac ?? '');
    if (m !== undefined && !macs.includes(m)) macs.push(m);
  }
  const ann = obj.metadata?.annotations ?? {};
  const p = opts.annotationPrefix;
  const base = {
    id,
    origin: { kind: 'bmh' as const, name: id, from: opts.from },
    macs,
    provisioningState: obj.status?.provisioning?.state ?? '',
    netboot: ann[`${p}netboot`]?.trim().toLowerCase() !== 'false',
    ...(obj.spec?.bootMode === undefined ? {} : { bootMode: obj.spec.bootMode }),
    ...secureBootAnnotation(ann[`${p}secure-boot`]),
  };
  const problem = (text: string, lease6?: Lease6Params, problem6?: string): BmhResult => ({
    kind: 'host',
    host: { ...base, lease: undefined, problem: text, lease6, problem6 },
  });

  const dns = ipList(ann[`${p}dns-servers`]);
  if (typeof dns === 'string') return problem(`annotation ${p}dns-servers: ${dns}`);
  const ntp = ipList(ann[`${p}ntp-servers`]);
  if (typeof ntp === 'string') return problem(`annotation ${p}ntp-servers: ${ntp}`);

  // IPv6: ipv6-address, or an IPv6 CIDR in ip-address (an IPv6-only host).
  const cidrText = ann[`${p}ip-address`]?.trim() ?? '';
  const v6Text = ann[`${p}ipv6-address`]?.trim() ?? '';
  const v6InIpAddress = cidrText.includes(':');
  if (v6InIpAddress && v6Text !== '')
    return problem(`annotations ${p}ip-address and ${p}ipv6-address both hold an IPv6 address`);
  const v6Key = v6InIpAddress ? `${p}ip-address` : `${p}ipv6-address`;
  const v6Cidr: Ipv6Cidr | undefined =
    v6InIpAddress || v6Text !== '' ? parseIpv6Cidr(v6InIpAddress ? cidrText : v6Text) : undefined;
  if ((v6InIpAddress || v6Text !== '') && v6Cidr === undefined)
    return problem(
      `annotation ${v6Key} "${v6InIpAddress ? cidrText : v6Text}" is not an IPv6 CIDR (e.g. fd00:1::5/64)`,
    );
  const lease6: Lease6Params | undefined =
    v6Cidr === undefined
      ? undefined
      : { ip: v6Cidr.address, prefix: v6Cidr.prefix, dns: dns.v6, ntp: ntp.v6, hostname: name };
  const problem6 = lease6 === undefined ? `annotation ${p}ipv6-address is missing` : undefined;

  if (cidrText === '') return problem(`annotation ${p}ip-address is missing`, lease6, problem6);
  if (v6InIpAddress) return problem(`annotation ${p}ip-address is an IPv6 address: no IPv4 lease`, lease6);
  const cidr = parseIpv4Cidr(cidrText);
  if (cidr === undefined)
    return problem(`annotation ${p}ip-address "${cidrText}" is not an IPv4 CIDR (e.g. 10.0.0.5/24)`, lease6, problem6);
  let gateway: Ipv4 | undefined = firstHostOf(cidr);
  const gwText = ann[`${p}gateway`];
  if (gwText !== undefined && gwText.trim() !== '') {
    gateway = parseIpv4(gwText);
    if (gateway === undefined)
      return problem(`annotation ${p}gateway "${gwText}" is not an IPv4 address`, lease6, problem6);
  }
  if (gateway === cidr.address) gateway = undefined;
  return {
    kind: 'host',
    host: {
      ...base,
      lease: { ip: cidr.address, prefix: cidr.prefix, gateway, dns: dns.v4, ntp: ntp.v4, hostname: name },
      problem: undefined,
      ...(lease6 === undefined ? { problem6 } : { lease6 }),
    },
  };
}
