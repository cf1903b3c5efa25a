/** The DHCPACK of an outcome, for whoever times what a host does after its lease (boot/boot-timings.ts). */
import type { BootClient } from '../boot/boot-client.js';
import type { Ipv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { DhcpOutcome } from './decide.js';
import { MESSAGE_TYPE, getMessageType } from './options.js';

export interface Acknowledgement {
  readonly mac: Mac;
  readonly ip: Ipv4;
  readonly client: BootClient['kind'];
}

/** The MAC, address and client of a DHCPACK that gives a lease; undefined for every other outcome. Pure. */
export function acknowledgementOf(outcome: DhcpOutcome): Acknowledgement | undefined {
  if (outcome.kind !== 'reply') return undefined;
  // INFORM answers are ACKs without a lease.
  if (outcome.facts.messageType === MESSAGE_TYPE.INFORM) return undefined;
  if (getMessageType(outcome.reply.options) !== MESSAGE_TYPE.ACK) return undefined;
  return { mac: outcome.facts.mac, ip: outcome.reply.yiaddr, client: outcome.facts.client.kind };
}
