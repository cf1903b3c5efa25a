/**
 * The boot-storm lab's addressing and inventory: one /16 provisioning network, host i's MAC and
 * IP, and the BareMetalHost manifest metalboot reads with --bmh-file. Pure.
 *
 * ```
 *   ns srv (bridge br0 10.60.0.1/16)                 ns cli (eth0 10.60.0.2/16 + every host IP)
 *   metalboot (CPU 0): DHCP 0.0.0.0:67, TFTP :69,    simulated hosts (one Node process, CPU 1):
 *     HTTP :8080 ─▶ stand-in httpd 127.0.0.1:P        DHCP on one 0.0.0.0:68 socket,
 *                   (CPU 1)                             TFTP/HTTP from each host's own IP
 * ```
 */

export const STORM_NET = {
  serverIp: '10.60.0.1',
  prefix: 16,
  /** The client namespace's own address (DHCP requests leave from it; hosts use their leases). */
  clientIp: '10.60.0.2',
  httpPort: 8080,
  /** Hosts are numbered from 0; at most 250 per /24 inside the /16. */
  maxHosts: 60_000,
} as const;

export const STORM_ARTIFACTS = {
  kernel: '/images/ironic-python-agent.kernel',
  initramfs: '/images/ironic-python-agent.initramfs',
} as const;

/** `52:54:00:xx:xx:xx`, unique per host index. */
export function hostMac(i: number): string {
  const b = [(i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return ['52', '54', '00', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** 10.60.(1 + i / 250).(1 + i % 250): clear of the server's 10.60.0.x. */
export function hostIp(i: number): string {
  if (i < 0 || i >= STORM_NET.maxHosts) throw new RangeError(`host index ${i} out of range`);
  return `10.60.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

export function hostName(i: number): string {
  return `storm-${String(i).padStart(4, '0')}`;
}

/** BareMetalHosts in state `inspecting` (so every host gets the inspector script: IPA kernel + initramfs). */
export function bmhManifest(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    docs.push(`---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: ${hostName(i)}
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: ${hostIp(i)}/${STORM_NET.prefix}
    metal3.vcluster.com/gateway: ${STORM_NET.serverIp}
spec:
  online: true
  bootMACAddress: "${hostMac(i)}"
status:
  provisioning:
    state: inspecting
`);
  }
  return docs.join('');
}

/** `ip -batch` lines giving the client namespace every host's address. */
export function clientAddressBatch(n: number, ifname: string): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(`addr add ${hostIp(i)}/${STORM_NET.prefix} dev ${ifname}`);
  return `${lines.join('\n')}\n`;
}

/** A small seeded PRNG (mulberry32) so a run's jitter can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
