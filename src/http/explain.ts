/**
 * /debug/explain: for one MAC, what DHCP would answer, which boot file each kind of client
 * would get, and which script — with the source, annotation, state and drop reason behind each.
 * This is the answer to "my host is stuck in inspecting and nothing says why". Pure: it reads
 * the index and the pool without changing them.
 */
import { ownerOf, type DhcpState } from '../dhcp/decide.js';
import type { DhcpPolicy } from '../dhcp/policy.js';
import { chooseScript } from '../boot/script-choice.js';
import { chooseChain } from '../boot/secure-boot.js';
import { archInfo } from '../boot/arch.js';
import { formatIpv4, prefixToMask } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { HostRecord } from '../leases/host.js';
import { bootUrlFor, ownerOf6, type Dhcp6State } from '../dhcp6/decide.js';
import type { Dhcp6Policy } from '../dhcp6/policy.js';
import { formatIpv6 } from '../net/ipv6.js';

const SAMPLE_CLIENTS = {
  'bios-pxe': { kind: 'pxe', archCode: 0, arch: archInfo(0) },
  'uefi-x64-pxe': { kind: 'pxe', archCode: 7, arch: archInfo(7) },
  'uefi-arm64-pxe': { kind: 'pxe', archCode: 11, arch: archInfo(11) },
  'uefi-x64-http': { kind: 'uefi-http', archCode: 16, arch: archInfo(16) },
  ipxe: { kind: 'ipxe', archCode: 7, arch: archInfo(7) },
} as const;

function describeHost(h: HostRecord): Record<string, unknown> {
  return {
    source: h.origin.kind,
    name: h.origin.name,
    from: h.origin.from,
    macs: h.macs,
    provisioningState: h.provisioningState,
    netboot: h.netboot,
    problem: h.problem,
    problem6: h.problem6,
    lease6:
      h.lease6 === undefined
        ? undefined
        : {
            ip: `${formatIpv6(h.lease6.ip)}/${h.lease6.prefix}`,
            dns: h.lease6.dns.map(formatIpv6),
            ntp: h.lease6.ntp.map(formatIpv6),
          },
    lease:
      h.lease === undefined
        ? undefined
        : {
            ip: formatIpv4(h.lease.ip),
            mask: formatIpv4(prefixToMask(h.lease.prefix)),
            gateway: h.lease.gateway === undefined ? undefined : formatIpv4(h.lease.gateway),
            dns: h.lease.dns.map(formatIpv4),
            ntp: h.lease.ntp.map(formatIpv4),
            hostname: h.lease.hostname,
          },
  };
}

/** /debug/explain without DHCPv4 (switched off, e.g. an IPv6-only network): the host, and that DHCPv4 is silent. */
export function explainWithoutDhcp(mac: Mac, index: DhcpState['index']): Record<string, unknown> {
  const lookup = index.lookup(mac);
  const out: Record<string, unknown> = { mac };
  if (lookup.kind === 'conflict') out.conflict = { reason: lookup.reason, hosts: lookup.hosts.map(describeHost) };
  if (lookup.kind === 'host') out.host = describeHost(lookup.host);
  out.dhcp = { answer: 'off', why: 'DHCPv4 is switched off (dhcp.enabled false)' };
  return out;
}

export function explain(mac: Mac, policy: DhcpPolicy, state: DhcpState): Record<string, unknown> {
  const owner = ownerOf(mac, policy, state);
  const lookup = state.index.lookup(mac);
  const out: Record<string, unknown> = { mac };
  if (lookup.kind === 'conflict') out.conflict = { reason: lookup.reason, hosts: lookup.hosts.map(describeHost) };
  if (lookup.kind === 'host') {
    out.host = describeHost(lookup.host);
    if (lookup.shadowed.length > 0) out.shadowed = lookup.shadowed.map(describeHost);
  }
  if (owner.kind === 'none') {
    out.dhcp = { answer: 'silent', reason: owner.reason, detail: owner.detail };
    return out;
  }
  const netboot = owner.host?.netboot ?? true;
  const boot = Object.fromEntries(
    Object.entries(SAMPLE_CLIENTS).map(([k, c]) => [k, policy.answers.answer(c, netboot, owner.host)]),
  );
  // Which chain UEFI clients of this host boot: iPXE, or signed shim → GRUB (Secure Boot).
  out.chain = chooseChain(owner.host, policy.boot.secureBoot?.default ?? false);
  if (owner.kind === 'host') {
    out.dhcp = {
      answer: 'offer',
      source: owner.host.origin.kind,
      ip: formatIpv4(owner.lease.ip),
      leaseSeconds: policy.leaseSeconds,
      boot,
    };
    out.script = chooseScript(owner.host);
  } else {
    const lease = state.pool.leaseOf(mac, state.now());
    out.dhcp = {
      answer: 'offer',
      source: 'range',
      why:
        owner.host === undefined
          ? 'no BareMetalHost or static host has this MAC; the dynamic range serves it'
          : `host cannot be served (${owner.host.problem}); the dynamic range serves it`,
      currentLease:
        lease === undefined
          ? undefined
          : {
              ip: formatIpv4(lease.ip),
              expiresAt: Number.isFinite(lease.expiresAt) ? new Date(lease.expiresAt).toISOString() : 'never',
            },
      boot,
    };
    out.script =
      owner.host === undefined
        ? { kind: 'none', why: 'only known hosts get a boot script; /boot/<mac>.ipxe answers 404' }
        : chooseScript(owner.host);
  }
  return out;
}

const SAMPLE_CLIENTS6 = {
  'uefi-x64-pxe6': SAMPLE_CLIENTS['uefi-x64-pxe'],
  'uefi-arm64-pxe6': SAMPLE_CLIENTS['uefi-arm64-pxe'],
  'uefi-x64-http6': SAMPLE_CLIENTS['uefi-x64-http'],
  ipxe: SAMPLE_CLIENTS.ipxe,
} as const;

/** What DHCPv6 would answer `mac` on the server's link, and the boot file URL of each client kind. Pure. */
export function explain6(mac: Mac, policy: Dhcp6Policy, state: Dhcp6State): Record<string, unknown> {
  const owner = ownerOf6(mac, policy, state);
  if (owner.kind === 'none') return { answer: 'silent', reason: owner.reason, detail: owner.detail };
  const netboot = owner.host?.netboot ?? true;
  const boot = Object.fromEntries(
    Object.entries(SAMPLE_CLIENTS6).map(([k, c]) => [k, bootUrlFor(c, netboot, policy, owner.host) ?? 'none']),
  );
  if (owner.kind === 'host')
    return { answer: 'advertise', source: owner.host.origin.kind, ip: formatIpv6(owner.lease.ip), boot };
  const lease = state.pool.leaseOf(mac, state.now());
  return {
    answer: 'advertise',
    source: 'range',
    why:
      owner.host === undefined
        ? 'no BareMetalHost or static host has this MAC; the IPv6 range serves it'
        : `host has no IPv6 address (${owner.host.problem6}); the IPv6 range serves it`,
    currentLease: lease === undefined ? undefined : { ip: formatIpv6(lease.ip) },
    boot,
  };
}
