/**
 * What to do with a read or write request: start a transfer with the negotiated parameters, or
 * refuse it with an ERROR packet and a named reason. Pure: the file lookup and the counts of
 * running transfers are passed in.
 *
 * Checks run cheapest and most certain first: shutting down, write request, transfer mode,
 * the name and the file, then the limits, then option negotiation (which cannot fail).
 */
import type { FileLookup, IpxeFile, PathRefusal } from '../boot/ipxe-files.js';
import { negotiate, type Negotiated, type NegotiationLimits } from './options.js';
import { ERROR_CODE, type ErrorPacket, type RequestPacket } from './packet.js';

export type RefuseReason =
  | 'shutting-down'
  | 'write-request'
  | 'netascii'
  | 'unknown-mode'
  | 'not-found'
  | 'access-violation'
  | 'server-busy'
  | 'client-busy';

export interface RequestContext {
  readonly lookup: (name: string) => FileLookup;
  readonly closing: boolean;
  /** Transfers running now, server-wide and from the requesting address. */
  readonly active: number;
  readonly activeForClient: number;
  readonly maxTransfers: number;
  /**
   * Transfers one address may hold once half the server's slots are taken. Below that an
   * address may hold more: hosts behind one NAT, or a Service that rewrites source addresses,
   * share an address and boot together. Above it no address can take the rest.
   */
  readonly maxPerClient: number;
  readonly limits: NegotiationLimits;
}

export type RequestDecision =
  | { readonly kind: 'start'; readonly file: IpxeFile; readonly negotiated: Negotiated }
  | {
      readonly kind: 'refuse';
      readonly reason: RefuseReason;
      readonly detail?: PathRefusal;
      readonly error: ErrorPacket;
    };

const refuse = (reason: RefuseReason, code: number, message: string, detail?: PathRefusal): RequestDecision => ({
  kind: 'refuse',
  reason,
  error: { op: 'error', code, message },
  ...(detail === undefined ? {} : { detail }),
});

export function decideRequest(req: RequestPacket, ctx: RequestContext): RequestDecision {
  if (ctx.closing) return refuse('shutting-down', ERROR_CODE.NOT_DEFINED, 'Server shutting down');
  // RFC 1350 §4: a server that does not allow the operation answers with an ERROR.
  if (req.op === 'wrq') return refuse('write-request', ERROR_CODE.ACCESS_VIOLATION, 'Read-only server');
  const mode = req.mode.toLowerCase();
  if (mode === 'netascii') {
    // Translating line endings would change the bytes and the size that tsize announced;
    // boot files are binary. Every firmware client asks for octet.
    return refuse('netascii', ERROR_CODE.ILLEGAL_OPERATION, 'netascii mode not supported, use octet');
  }
  if (mode !== 'octet') return refuse('unknown-mode', ERROR_CODE.ILLEGAL_OPERATION, 'Unknown transfer mode');
  const found = ctx.lookup(req.filename);
  if (found.kind === 'missing') return refuse('not-found', ERROR_CODE.FILE_NOT_FOUND, 'File not found');
  if (found.kind === 'refused')
    return refuse('access-violation', ERROR_CODE.ACCESS_VIOLATION, 'Access violation', found.reason);
  if (ctx.active >= ctx.maxTransfers) {
    return refuse('server-busy', ERROR_CODE.NOT_DEFINED, 'Server busy: too many transfers, try again');
  }
  if (ctx.activeForClient >= ctx.maxPerClient && ctx.active * 2 >= ctx.maxTransfers) {
    return refuse('client-busy', ERROR_CODE.NOT_DEFINED, 'Too many transfers from this client, try again');
  }
  return { kind: 'start', file: found.file, negotiated: negotiate(req.options, found.file.size, ctx.limits) };
}
