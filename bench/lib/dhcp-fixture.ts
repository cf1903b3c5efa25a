/**
 * In-process fixtures for the codec and state-scale benches: a DHCP policy like the one
 * main.ts builds, and N synthetic BareMetalHosts (objects as the Kubernetes API returns them,
 * or the same as manifest YAML).
 */
import { dhcpPolicy, type DhcpPolicy } from '../../src/dhcp/policy.js';
import { DEFAULT_BOOT_FILES } from '../../src/boot/boot-files.js';
import type { BareMetalHostObject } from '../../src/leases/bmh.js';
import { parseIpv4 } from '../../src/net/ipv4.js';

export const SERVER_IP = '10.64.0.1';
export const ANNOTATION_PREFIX = 'metal3.vcluster.com/';

export function policy(): DhcpPolicy {
  const ip = parseIpv4(SERVER_IP)!;
  return dhcpPolicy({
    serverIp: ip,
    serverPrefix: 10,
    ports: { relay: 67, client: 68 },
    reply: { serverId: ip, tftpServer: ip, domainName: undefined },
    boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: `http://${SERVER_IP}:8080` },
    leaseSeconds: 3600,
    rangeGateway: ip,
    rangeDns: [parseIpv4('10.64.0.53')!],
    rangeNtp: [],
  });
}

/** MAC of host i: 52:54:00 + 24-bit i. */
export function hostMac(i: number): string {
  const h = i.toString(16).padStart(6, '0');
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/** Address of host i inside 10.64.0.0/10 (skipping .0 and .255 is not needed in a /10). */
export function hostIp(i: number): string {
  const n = ((10 << 24) | (64 << 16)) + 10 + i;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const STATES = ['provisioned', 'available', 'inspecting', 'provisioning', 'externally provisioned'];

/** A BareMetalHost as a cluster would hold it: annotations, boot MAC, state, two inspected NICs. */
export function bmhObject(i: number): BareMetalHostObject {
  return {
    apiVersion: 'metal3.io/v1alpha1',
    kind: 'BareMetalHost',
    metadata: {
      name: `node-${i}`,
      namespace: `rack-${Math.floor(i / 1000)}`,
      resourceVersion: String(1000 + i),
      annotations: {
        [`${ANNOTATION_PREFIX}ip-address`]: `${hostIp(i)}/10`,
        [`${ANNOTATION_PREFIX}gateway`]: SERVER_IP,
        [`${ANNOTATION_PREFIX}dns-servers`]: '10.64.0.53,10.64.0.54',
      },
    },
    spec: { bootMACAddress: hostMac(i), online: true },
    status: {
      provisioning: { state: STATES[i % STATES.length] },
      hardware: {
        nics: [
          { name: 'eno1', mac: hostMac(i) },
          { name: 'eno2', mac: `52:55:00:${hostMac(i).slice(9)}` },
        ],
      },
    },
  };
}

/** The same host as a manifest document (with the BMC Secret users apply beside it). */
export function bmhManifest(i: number): string {
  const o = bmhObject(i);
  return `---
apiVersion: v1
kind: Secret
metadata:
  name: node-${i}-bmc
  namespace: ${o.metadata!.namespace}
type: Opaque
data:
  username: YWRtaW4=
  password: cGFzc3dvcmQ=
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: node-${i}
  namespace: ${o.metadata!.namespace}
  annotations:
    ${ANNOTATION_PREFIX}ip-address: "${hostIp(i)}/10"
    ${ANNOTATION_PREFIX}gateway: "${SERVER_IP}"
    ${ANNOTATION_PREFIX}dns-servers: "10.64.0.53,10.64.0.54"
spec:
  online: true
  bootMACAddress: "${hostMac(i)}"
  bmc:
    address: redfish-virtualmedia://10.63.0.${i % 250}/redfish/v1/Systems/1
    credentialsName: node-${i}-bmc
status:
  provisioning:
    state: ${o.status!.provisioning!.state}
`;
}
