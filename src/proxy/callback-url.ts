/**
 * The callback URLs: what Ironic is told (one URL per node and agent on the callback listener)
 * and how a request arriving there maps to the real agent. Pure.
 *
 * Scheme: `<callback-advertise-url>/nodes/<node>/<agent>` where `<node>` is the identifier IPA
 * heartbeats with (the node UUID from its lookup) and `<agent>` is the agent's identity: a hash
 * of the callback URL and the certificate IPA itself sent. It depends on nothing else, so it is
 * the same for every heartbeat of one agent, after a restart and on every replica, and it
 * changes exactly when IPA's own callback_url or agent_verify_ca would. Ironic, which refuses a
 * heartbeat whose callback_url changed until its agent_url is wiped (reboot, power action, new
 * deployment), therefore judges a changed agent by its own rules, as if it saw IPA directly.
 *
 * Ironic then calls `<agent_url>/v1/commands/…`; it appends without removing a trailing slash,
 * so `//` is folded. Only IPA's API (ironic_python_agent/api/app.py, version 1) is forwarded.
 */
import { createHash } from 'node:crypto';
import type { BaseUrl } from './proxy-urls.js';
import { isNodeIdent } from './proxy-urls.js';

/** An agent's identity in callback URLs: 32 lower-case hex digits (128 bits of SHA-256). */
export type AgentId = string;

const AGENT_ID = /^[0-9a-f]{32}$/;

/**
 * The identity of the agent a heartbeat describes: its normalised callback URL and the
 * certificate it sent (surrounding whitespace ignored, as Ironic compares it), or none.
 */
export function agentIdOf(agentUrl: string, caPem: string | undefined): AgentId {
  return createHash('sha256')
    .update(JSON.stringify([agentUrl, caPem?.trim() ?? null]))
    .digest('hex')
    .slice(0, 32);
}

/** The callback_url Ironic gets for an agent of a node. */
export function nodeCallbackUrl(advertise: BaseUrl, node: string, agent: AgentId): string {
  return `${advertise.origin}${advertise.basePath}/nodes/${node}/${agent}`;
}

export type CallbackTarget =
  | {
      readonly kind: 'node';
      readonly node: string;
      readonly agent: AgentId;
      /** `''` or `/v1/commands/` etc., canonical. */
      readonly path: string;
      /** `''` or `?…` as sent. */
      readonly search: string;
    }
  | { readonly kind: 'refused'; readonly reason: CallbackRefusal };

/**
 * Why a request on the callback listener is not forwarded: the metrics label and the answer.
 * `not-agent-api`: a method and path that IPA's API does not have; `loop`: the request has
 * already passed through this listener.
 */
export type CallbackRefusal = 'not-under-nodes' | 'bad-node' | 'bad-agent' | 'bad-path' | 'not-agent-api' | 'loop';

/**
 * Splits a raw request target (`/nodes/<node>/<agent>/v1/commands/?wait=true`) received on the
 * callback listener whose advertised base path is `basePath`. The rest of the path is kept
 * byte for byte (percent-escapes are not decoded on the way through) except that runs of `/`
 * fold into one; a segment that decodes to `.`, `..`, or contains `/`, `\` or a control
 * character is refused, so nothing climbs out of the agent's API root.
 */
export function parseCallbackTarget(rawTarget: string, basePath: string): CallbackTarget {
  const q = rawTarget.indexOf('?');
  const path = q < 0 ? rawTarget : rawTarget.slice(0, q);
  const search = q < 0 ? '' : rawTarget.slice(q);
  const prefix = `${basePath}/nodes/`;
  if (!path.startsWith(prefix)) return { kind: 'refused', reason: 'not-under-nodes' };
  const [node = '', agent = '', ...rest] = path.slice(prefix.length).split('/');
  if (!isNodeIdent(node)) return { kind: 'refused', reason: 'bad-node' };
  if (!AGENT_ID.test(agent)) return { kind: 'refused', reason: 'bad-agent' };
  const tail = rest.length === 0 ? '' : `/${rest.join('/')}`;
  const segments = rest.filter((s) => s !== '');
  for (const seg of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return { kind: 'refused', reason: 'bad-path' };
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
    if (decoded === '.' || decoded === '..' || /[/\\\u0000-\u001f\u007f]/.test(decoded))
      return { kind: 'refused', reason: 'bad-path' };
  }
  if (/[#\s]/.test(search)) return { kind: 'refused', reason: 'bad-path' };
  const canonical =
    segments.length === 0 ? (tail === '' ? '' : '/') : `/${segments.join('/')}${tail.endsWith('/') ? '/' : ''}`;
  return { kind: 'node', node, agent, path: canonical, search };
}

/** The endpoints of IPA's API (werkzeug rules of ironic_python_agent/api/app.py, v1). */
export type AgentApiRoute = 'root' | 'v1' | 'status' | 'list-commands' | 'get-command' | 'run-command';

/**
 * Which endpoint of IPA's API a method and canonical path (from parseCallbackTarget) name;
 * undefined for anything else, which the listener answers itself without contacting the agent.
 * Ironic's agent client uses `POST /v1/commands/` and `GET /v1/commands/`; the rest of IPA's v1
 * API (version documents, status, one command) is read-only. IPA's unversioned aliases and
 * werkzeug's redirects for a missing trailing slash are not needed by Ironic and not forwarded.
 */
export function agentApiRoute(method: string, path: string): AgentApiRoute | undefined {
  if (method === 'POST') return path === '/v1/commands/' ? 'run-command' : undefined;
  if (method !== 'GET') return undefined;
  if (path === '' || path === '/') return 'root';
  if (path === '/v1/') return 'v1';
  if (path === '/v1/status') return 'status';
  if (path === '/v1/commands/') return 'list-commands';
  return /^\/v1\/commands\/[^/]+$/.test(path) ? 'get-command' : undefined;
}

/** The agent's origin and the request path on it for a parsed callback target. */
export function agentRequestTarget(
  agent: BaseUrl,
  path: string,
  search: string,
): { readonly origin: string; readonly path: string } {
  const p = `${agent.basePath}${path}`;
  return { origin: agent.origin, path: `${p === '' ? '/' : p}${search}` };
}
