import { describe, expect, it } from 'vitest';
import { bmhToHost } from '../leases/bmh.js';
import { HostIndex } from '../leases/host-index.js';
import { LeasePool6 } from '../leases/pool.js';
import { decide6 } from '../dhcp6/decide.js';
import { dhcp6Policy } from '../dhcp6/policy.js';
import {
  MSG6,
  OPT6,
  clientArchOption,
  duidLlt,
  iaNaOption,
  option,
  userClassOption,
  vendorClassOption,
} from '../dhcp6/options.js';
import { serverDuidOf } from '../dhcp6/policy.js';
import { parseIpv6 } from '../net/ipv6.js';
import { macToBytes, parseMac } from '../net/mac.js';
import { dhcp6Milestone } from './boot-milestones.js';

const SERVER = parseIpv6('fd00:77::1')!;
const MAC = parseMac('52:54:00:00:00:01')!;

function decideFor(type: number, extra: ReturnType<typeof option>[]) {
  const index = new HostIndex();
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: {
        name: 'node-1',
        namespace: 'ns',
        annotations: { 'metal3.vcluster.com/ip-address': 'fd00:77::21/64' },
      },
      spec: { bootMACAddress: MAC },
    },
    { annotationPrefix: 'metal3.vcluster.com/', from: 'test' },
  );
  if (r.kind === 'host') index.replaceAll('bmh', [r.host]);
  const policy = dhcp6Policy({
    serverIp: SERVER,
    serverPrefix: 64,
    tftpServer: SERVER,
    boot: { bootFiles: { 'uefi-x86_64': 'snponly.efi' }, httpAdvertiseUrl: 'http://[fd00:77::1]:8080' },
    leaseSeconds: 3600,
    dns: [],
    ntp: [],
    domainSearch: [],
    rapidCommit: false,
  });
  const pool = new LeasePool6({ ranges: [], isClaimed: () => false, serverIp: SERVER });
  const msg = {
    kind: 'client' as const,
    msgType: type,
    transactionId: 1,
    options: [option(OPT6.CLIENTID, duidLlt(macToBytes(MAC), 1)), iaNaOption(1, 0, 0), ...extra],
  };
  return decide6(msg, undefined, policy, { index, pool, now: () => 0 });
}

describe('dhcp6Milestone', () => {
  it('makes the firmware offer of an Advertise and the acknowledgement of a Reply, with the address to match by', () => {
    const pxe = [clientArchOption([7]), vendorClassOption(343, ['PXEClient:Arch:00007:UNDI:003000'])];
    const adv = dhcp6Milestone(decideFor(MSG6.SOLICIT, pxe));
    expect(adv?.report).toMatchObject({
      mac: MAC,
      milestone: 'dhcp-offer',
      detail: {
        ip: 'fd00:77::21/64',
        client: 'PXE firmware, arch 7 over DHCPv6',
        boot: 'boot file snponly.efi over TFTP',
      },
    });
    expect(adv?.ack).toBeUndefined();
    const ack = dhcp6Milestone(decideFor(MSG6.REQUEST, [...pxe, option(OPT6.SERVERID, serverDuidOf(SERVER))]));
    expect(ack?.report.milestone).toBe('dhcp-ack');
    expect(ack?.ack).toBe(parseIpv6('fd00:77::21'));
  });

  it("names iPXE's DHCPv6 as iPXE's milestones, and a dropped request of a known host as such", () => {
    const r = dhcp6Milestone(
      decideFor(MSG6.REQUEST, [userClassOption(['iPXE']), option(OPT6.SERVERID, serverDuidOf(SERVER))]),
    );
    expect(r?.report.milestone).toBe('ipxe-dhcp-ack');
    const other = dhcp6Milestone(
      decideFor(MSG6.REQUEST, [option(OPT6.SERVERID, Uint8Array.of(0, 3, 0, 1, 1, 2, 3, 4, 5, 6))]),
    );
    expect(other?.report).toMatchObject({ milestone: 'dhcp-dropped', detail: { reason: 'other-server' } });
  });
});
