/**
 * The callback URLs: what Ironic is told (one stable URL per node on the callback listener) and
 * how a request arriving there maps to the real agent. Pure.
 *
 * Scheme: `<callback-advertise-url>/nodes/<node>` where `<node>` is the identifier IPA
 * heartbeats with (the node UUID from its lookup). It depends on nothing but the node, so it is
 * the same for every heartbeat, after a restart and on every replica, and Ironic — which
 * refuses a heartbeat whose callback_url changed — keeps accepting it. Ironic then calls
 * `<agent_url>/v1/commands/…`; it appends without removing a trailing slash, so `//` after the
 * node is folded.
 */
import { isNodeIdent, type BaseUrl } from './proxy-urls.js';

/** The callback_url Ironic gets for a node. */
export function nodeCallbackUrl(advertise: BaseUrl, node: string): string {
  return `${advertise.origin}${advertise.basePath}/nodes/${node}`;
}

export type CallbackTarget =
  | {
      readonly kind: 'node';
      readonly node: string /** `''` or `/v1/commands/` etc., canonical */;
      readonly path: string /** `''` or `?…` as sent */;
      readonly search: string;
    }
  | { readonly kind: 'refused'; readonly reason: CallbackRefusal };

/** Why a request on the callback listener is not forwarded: the metrics label and the answer. */
export type CallbackRefusal = 'not-under-nodes' | 'bad-node' | 'bad-path';

/**
 * Splits a raw request target (`/nodes/<node>/v1/commands/?wait=true`) received on the
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
  const rest = path.slice(prefix.length);
  const slash = rest.indexOf('/');
  const node = slash < 0 ? rest : rest.slice(0, slash);
  if (!isNodeIdent(node)) return { kind: 'refused', reason: 'bad-node' };
  const tail = slash < 0 ? '' : rest.slice(slash);
  const segments = tail.split('/').filter((s) => s !== '');
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
  return { kind: 'node', node, path: canonical, search };
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
