/**
 * What decide6() concludes about one DHCPv6 request: the reply to send (and what must be durable
 * first), or why none is sent. Apart from decide.ts so that reply.ts, which builds the replies,
 * and decide.ts, which decides, each need only this, not each other's types.
 */
import type { BootAnswer } from '../boot/boot-answer.js';
import type { BootClient } from '../boot/boot-client.js';
import type { HostRecord } from '../leases/host.js';
import type { CommitUndo, JournalRecord } from '../leases/pool.js';
import type { Ipv6 } from '../net/ipv6.js';
import type { Mac } from '../net/mac.js';
import type { Dhcp6Message } from './codec.js';
import type { MacSource } from './identity.js';

/** Every reason a request gets no reply. Metrics count them; logs name them. */
export const DROP_REASONS6 = [
  'malformed',
  'not-a-request',
  'unsupported-message-type',
  'no-client-id',
  'no-mac',
  'unknown-host',
  'host-not-servable',
  'duplicate-mac',
  'ip-conflict',
  'pool-exhausted',
  'sources-loading',
  'other-server',
  'no-record',
  'journal-failed',
  'journal-full',
  'lease-conflict',
  'send-failed',
  'other-interface',
] as const;
export type DropReason6 = (typeof DROP_REASONS6)[number];

export type LeaseSource6 = 'bmh' | 'static' | 'range';

/** What decide6() learnt about a request: for logs, metrics and boot events. */
export interface Request6Facts {
  readonly mac: Mac | undefined;
  readonly via: MacSource | undefined;
  readonly messageType: number;
  readonly transactionId: number;
  readonly client: BootClient;
  readonly source: LeaseSource6 | undefined;
  readonly host: HostRecord | undefined;
  /** How many relays the request came through (0: on the server's link). */
  readonly relays: number;
}

export type Dhcp6Outcome =
  | {
      readonly kind: 'reply';
      /** The message to send back to where the request came from (a Relay-reply when relayed). */
      readonly reply: Dhcp6Message;
      /** The client message inside it (Advertise or Reply). */
      readonly inner: Dhcp6Message & { kind: 'client' };
      readonly facts: Request6Facts;
      readonly boot: BootAnswer | undefined;
      /** The address given, when the reply gives one. */
      readonly address: Ipv6 | undefined;
      /** Must be durable before the reply is sent. */
      readonly persist: JournalRecord | undefined;
      readonly commit: { readonly undo: CommitUndo<Ipv6>; readonly heldUntil: number | undefined } | undefined;
    }
  | {
      readonly kind: 'ignore';
      readonly reason: DropReason6;
      readonly detail: string | undefined;
      readonly facts: Request6Facts | undefined;
      /** Durable state change without a reply. */
      readonly persist: JournalRecord | undefined;
    };
