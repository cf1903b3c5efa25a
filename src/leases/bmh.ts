/**
 * BareMetalHost → HostRecord, the one conversion used for manifests read from files and for
 * objects from the Kubernetes API. Pure.
 *
 * Annotations (prefix configurable, default `metal3.vcluster.com/`):
 *   ip-address   IPv4 CIDR, required (the lease address and prefix)
 *   gateway      router; default the first host of the CIDR
 *   dns-servers  comma list
 *   ntp-servers  comma list
 *   netboot      "false": lease only, no boot file
 */
import { parseMac, type Mac } from '../net/mac.js';
import { firstHostOf, parseIpv4, parseIpv4Cidr, type Ipv4 } from '../net/ipv4.js';
import type { HostRecord } from './host.js';

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
  readonly spec?: { readonly bootMACAddress?: string; readonly online?: boolean };
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

function ipList(text: string | undefined): Ipv4[] | string {
  if (text === undefined || text.trim() === '') return [];
  const out: Ipv4[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const ip = parseIpv4(part);
    if (ip === undefined) return `"${part}" is not an IPv4 address`;
    out.push(ip);
  }
  return out;
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
  };
  const problem = (text: string): BmhResult => ({ kind: 'host', host: { ...base, lease: undefined, problem: text } });

  const cidrText = ann[`${p}ip-address`];
  if (cidrText === undefined || cidrText.trim() === '') return problem(`annotation ${p}ip-address is missing`);
  const cidr = parseIpv4Cidr(cidrText);
  if (cidr === undefined)
    return problem(`annotation ${p}ip-address "${cidrText}" is not an IPv4 CIDR (e.g. 10.0.0.5/24)`);
  let gateway: Ipv4 | undefined = firstHostOf(cidr);
  const gwText = ann[`${p}gateway`];
  if (gwText !== undefined && gwText.trim() !== '') {
    gateway = parseIpv4(gwText);
    if (gateway === undefined) return problem(`annotation ${p}gateway "${gwText}" is not an IPv4 address`);
  }
  if (gateway === cidr.address) gateway = undefined;
  const dns = ipList(ann[`${p}dns-servers`]);
  if (typeof dns === 'string') return problem(`annotation ${p}dns-servers: ${dns}`);
  const ntp = ipList(ann[`${p}ntp-servers`]);
  if (typeof ntp === 'string') return problem(`annotation ${p}ntp-servers: ${ntp}`);
  return {
    kind: 'host',
    host: {
      ...base,
      lease: { ip: cidr.address, prefix: cidr.prefix, gateway, dns, ntp, hostname: name },
      problem: undefined,
    },
  };
}
