/**
 * Heartbeat rewriting: what IPA tells Ironic about how to reach it is swapped for how to reach
 * the callback listener, and what IPA said is kept for the listener. Pure.
 *
 * IPA sends `POST /v1/heartbeat/{node}` with `{callback_url, agent_token, agent_version,
 * agent_verify_ca?, agent_status?, agent_status_message?}`. Towards Ironic:
 * - `callback_url` becomes the URL of this node's agent on the callback listener
 *   (callback-url.ts), which changes exactly when IPA's callback_url or certificate does, so
 *   Ironic refuses a changed agent as it would refuse IPA itself; an empty one (anaconda's
 *   one-way heartbeat) passes untouched and maps nothing;
 * - `agent_verify_ca` becomes the listener's CA when the listener speaks TLS and the request's
 *   microversion allows the field (1.68), and is removed otherwise — Ironic then talks plain
 *   HTTP to the listener (http callback_url) or uses its own `[agent]verify_ca`;
 * - every other field (the agent token above all) is passed through unchanged.
 * Refused before Ironic sees it: a callback_url whose host is not the heartbeat's source, or
 * that names one of metalboot's own listeners (agent-address.ts).
 */
import { X509Certificate } from 'node:crypto';
import { checkAgentAddress, type AgentAddressRefusal, type OwnListeners } from './agent-address.js';
import { agentIdOf, type AgentId } from './callback-url.js';
import { microversionAtLeast, parseBaseUrl, type BaseUrl } from './proxy-urls.js';

/** What the API proxy needs from the callback listener to rewrite heartbeats. */
export interface CallbackEndpoint {
  /** The callback_url Ironic gets for an agent of a node. */
  callbackUrlFor(node: string, agent: AgentId): string;
  /** The CA Ironic is told to trust (agent_verify_ca), or undefined for a plain-HTTP listener. */
  ironicCaPem(): string | undefined;
  /** The ports the listener is bound to and advertised at (no agent may point there). */
  ownPorts(): readonly number[];
}

/** The microversion that introduced `agent_verify_ca` in heartbeats. */
export const VERIFY_CA_MICROVERSION = [1, 68] as const;

export interface HeartbeatContext {
  /** The callback URL of an agent of this node on the listener. */
  readonly callbackUrlFor: (agent: AgentId) => string;
  /** The address the heartbeat came from (the TCP peer). */
  readonly source: string;
  /** metalboot's own addresses and ports. */
  readonly own: OwnListeners;
  /** The listener's CA PEM for Ironic, or undefined when the listener is plain HTTP. */
  readonly listenerCaPem: string | undefined;
  /** The request's `X-OpenStack-Ironic-API-Version`, parsed. */
  readonly microversion: readonly [number, number] | undefined;
}

/** What IPA said about itself, kept for the callback listener. */
export interface AgentEndpoint {
  /** IPA's own callback URL, normalised (`https://192.0.2.10:9999`). */
  readonly url: string;
  readonly base: BaseUrl;
  /** The certificate IPA sent as agent_verify_ca, to pin its TLS; undefined when none. */
  readonly caPem: string | undefined;
  /** The agent's identity in its callback URL (agentIdOf(url, caPem)). */
  readonly id: AgentId;
}

export type HeartbeatRewrite =
  | {
      readonly kind: 'rewrite';
      readonly body: Buffer;
      readonly agent: AgentEndpoint;
      /** Ironic gets our CA. */
      readonly sentCa: boolean;
    }
  | { readonly kind: 'passthrough'; readonly body: Buffer; readonly reason: 'empty-callback-url' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'refused'; readonly reason: AgentAddressRefusal; readonly message: string };

/** Whether a string holds at least one parseable PEM certificate (and nothing unparseable). */
export function isCertificatePem(pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) return false;
  try {
    for (const b of blocks) new X509Certificate(b);
    return true;
  } catch {
    return false;
  }
}

export function rewriteHeartbeat(raw: Buffer, ctx: HeartbeatContext): HeartbeatRewrite {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { kind: 'invalid', reason: 'the heartbeat body is not JSON' };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return { kind: 'invalid', reason: 'the heartbeat body is not a JSON object' };
  const fields = body as Record<string, unknown>;
  const cb = fields['callback_url'];
  if (typeof cb !== 'string') return { kind: 'invalid', reason: 'callback_url is missing or not a string' };
  if (cb === '') return { kind: 'passthrough', body: raw, reason: 'empty-callback-url' };
  let base: BaseUrl;
  try {
    base = parseBaseUrl(cb, 'callback_url');
  } catch {
    return { kind: 'invalid', reason: 'callback_url is not an http(s) URL without query or credentials' };
  }
  const ca = fields['agent_verify_ca'];
  if (ca !== undefined && ca !== null && typeof ca !== 'string')
    return { kind: 'invalid', reason: 'agent_verify_ca is not a string' };
  const agentCa = typeof ca === 'string' && ca.trim() !== '' ? ca : undefined;
  if (agentCa !== undefined && !isCertificatePem(agentCa))
    return { kind: 'invalid', reason: 'agent_verify_ca is not a PEM certificate' };
  const refusal = checkAgentAddress(base, ctx.source, ctx.own);
  if (refusal !== undefined) return { kind: 'refused', ...refusal };

  const url = `${base.origin}${base.basePath}`;
  const id = agentIdOf(url, agentCa);
  const out: Record<string, unknown> = { ...fields, callback_url: ctx.callbackUrlFor(id) };
  const sentCa = ctx.listenerCaPem !== undefined && microversionAtLeast(ctx.microversion, ...VERIFY_CA_MICROVERSION);
  if (sentCa) out['agent_verify_ca'] = ctx.listenerCaPem;
  else delete out['agent_verify_ca'];
  return { kind: 'rewrite', body: Buffer.from(JSON.stringify(out)), agent: { url, base, caPem: agentCa, id }, sentCa };
}
