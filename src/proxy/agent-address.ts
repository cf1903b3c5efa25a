/**
 * Where a heartbeat may point the callbacks: at the machine the heartbeat came from, and never
 * at metalboot itself. Pure.
 *
 * IPA advertises its own address in callback_url: by default the source address of its route
 * to `ipa-api-url`, which is the API proxy, so the host of an honest callback_url is the address
 * its heartbeat arrives from. A host other than the heartbeat's source would let whoever holds
 * (or steals) an agent token aim Ironic's commands, with the token in their query, at any
 * machine the listener can reach. A source on metalboot's own machine aiming at one of its ports
 * would send the callback listener's requests back into metalboot.
 */
import { canonicalIp, isLoopbackIp } from '../net/ip-address.js';
import type { BaseUrl } from './proxy-urls.js';

/** Why a heartbeat's agent address is refused: the metrics label. */
export type AgentAddressRefusal = 'agent-not-source' | 'agent-is-metalboot';

/** What metalboot knows about its own listeners when a heartbeat arrives. */
export interface OwnListeners {
  /** The addresses of this machine (network namespace); loopback counts anyway. */
  readonly addresses: readonly string[];
  /** The TCP ports metalboot listens on or is advertised at (callback, HTTP and API, images). */
  readonly ports: readonly number[];
}

/** The TCP port of a base URL, the scheme's default when none is written. */
export function portOf(base: BaseUrl): number {
  const port = new URL(base.origin).port;
  return port === '' ? (base.protocol === 'https:' ? 443 : 80) : Number(port);
}

/**
 * Checks an agent URL against the address its heartbeat came from (`source`, the peer address
 * of the TCP connection, IPv4-mapped forms allowed). The host must be an IP literal equal to the
 * source; a name is refused too (it would need DNS, and DNS can say anything). When the source
 * is this machine, the port must not be one of metalboot's own.
 */
export function checkAgentAddress(
  agent: BaseUrl,
  source: string,
  own: OwnListeners,
): { readonly reason: AgentAddressRefusal; readonly message: string } | undefined {
  const host = canonicalIp(agent.hostname);
  const from = canonicalIp(source);
  if (host === undefined || from === undefined || host !== from)
    return {
      reason: 'agent-not-source',
      message: `callback_url host ${agent.hostname} is not the address the heartbeat came from (${from ?? source})`,
    };
  if (own.ports.includes(portOf(agent)) && (isLoopbackIp(host) || own.addresses.some((a) => canonicalIp(a) === host)))
    return { reason: 'agent-is-metalboot', message: `callback_url ${agent.origin} is metalboot's own listener` };
  return undefined;
}
