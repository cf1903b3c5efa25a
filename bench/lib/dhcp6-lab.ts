/**
 * The DHCPv6 benchmark's lab: the server namespace holding the bridge, the client namespace on a
 * veth into it, IPv6 on, and every address set by hand without duplicate address detection
 * (nodad, so nothing waits on "tentative"), link-local ones included (fe80::1, fe80::2 instead
 * of the EUI-64 ones the kernel would form from the MACs; see dhcp6-peers.ts for why).
 */
import { createLab, type Lab } from '../../lab/netns.js';
import { NET6 } from './dhcp6-peers.js';

export interface Lab6 {
  readonly lab: Lab;
  /** The client namespace's interface (perfdhcp -l in direct mode). */
  readonly ifname: string;
}

/** `sysctl -w` of every per-interface key the kernel needs to form no address of its own. */
function noAutoconf(scope: string): string[] {
  return [
    `net.ipv6.conf.${scope}.addr_gen_mode=1`,
    `net.ipv6.conf.${scope}.accept_dad=0`,
    `net.ipv6.conf.${scope}.accept_ra=0`,
    `net.ipv6.conf.${scope}.autoconf=0`,
  ];
}

/** Replaces every IPv6 address of `dev` in `ns` by `linkLocal`/64 and `global` (CIDR), without DAD. */
export async function setAddresses(
  lab: Lab,
  ns: string,
  dev: string,
  linkLocal: string,
  global: string,
): Promise<void> {
  await lab.exec(ns, 'sysctl', ['-qw', ...noAutoconf(dev)], { check: true });
  await lab.exec(ns, 'ip', ['-6', 'addr', 'flush', 'dev', dev], { check: true });
  await lab.exec(ns, 'ip', ['addr', 'add', `${linkLocal}/64`, 'dev', dev, 'nodad'], { check: true });
  await lab.exec(ns, 'ip', ['addr', 'add', global, 'dev', dev, 'nodad'], { check: true });
}

/** The modified EUI-64 link-local address (RFC 4291 appendix A) the kernel would form from `mac`. */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((x) => Number.parseInt(x, 16));
  b[0] = b[0]! ^ 0x02;
  const h = (i: number) => b[i]!.toString(16).padStart(2, '0');
  const group = (s: string) => s.replace(/^0+(?=.)/, '');
  return `fe80::${group(h(0) + h(1))}:${group(`${h(2)}ff`)}:${group(`fe${h(3)}`)}:${group(h(4) + h(5))}`;
}

/** Creates the lab; the caller closes it (lab.close(), and the lab's exit handler on a crash). */
export async function createLab6(): Promise<Lab6> {
  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: NET6.serverCidr4, ipv6: true });
  try {
    await lab.exec('srv', 'sysctl', ['-qw', ...noAutoconf('default'), ...noAutoconf('all')], { check: true });
    await setAddresses(lab, 'srv', 'br0', NET6.serverLinkLocal, NET6.serverCidr);
    await lab.addNamespace('cli');
    await lab.exec('cli', 'sysctl', ['-qw', ...noAutoconf('default'), ...noAutoconf('all')], { check: true });
    const link = await lab.connect('cli');
    await setAddresses(lab, 'cli', link.ifname, NET6.clientLinkLocal, NET6.clientCidr);
    return { lab, ifname: link.ifname };
  } catch (err) {
    await lab.close();
    throw err;
  }
}
