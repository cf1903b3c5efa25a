/**
 * Ironic's answer to IPA's lookup, as the API proxy reads and relays it. Pure.
 *
 * Ironic (api/controllers/v1/ramdisk.py) answers `GET /v1/lookup?addresses=…[&node_uuid=]`
 * with `{node, config}`: the node's uuid, properties, instance_info and driver_internal_info,
 * plus the `links` every API resource carries (self and bookmark, built from Ironic's public
 * URL). It never lists the node's ports.
 *
 * What the answer proves about the MACs asked for: without node_uuid, Ironic found the node by
 * `get_node_by_port_addresses`, which answers only when the ports among the addresses belong to
 * one node. So at least one address is a port of the node, and none is a port of another one;
 * the rest may be anything a caller made up. Only a lookup for one address alone pins that
 * address to the node. With node_uuid Ironic does not look at the addresses at all.
 */
import { rewriteLinks, isNodeIdent, type BaseUrl } from './proxy-urls.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * The MACs a 200 answer to this lookup query (`?addresses=…`, as forwarded) proves to be ports
 * of the node it names: the one address of a query that has exactly one and no node_uuid;
 * none otherwise.
 */
export function confirmedLookupMacs(search: string): string[] {
  const q = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  if (q.has('node_uuid')) return [];
  const all = q.getAll('addresses');
  if (all.length !== 1) return [];
  const entries = new Set(
    all[0]!
      .split(',')
      .map((s) => s.trim().toLowerCase().replace(/-/g, ':'))
      .filter((s) => s !== ''),
  );
  if (entries.size !== 1) return [];
  const [mac] = entries as unknown as [string];
  return MAC.test(mac) ? [mac] : [];
}

/** The node identifier of a parsed lookup answer; undefined when it has none usable. */
export function lookupNodeUuid(doc: unknown): string | undefined {
  if (doc === null || typeof doc !== 'object') return undefined;
  const node = (doc as { node?: unknown }).node;
  if (node === null || typeof node !== 'object') return undefined;
  const uuid = (node as { uuid?: unknown }).uuid;
  return typeof uuid === 'string' && isNodeIdent(uuid) ? uuid : undefined;
}

/**
 * The lookup answer IPA gets: every `href` under Ironic's URL moved under ours, and the node's
 * own `links` dropped. Those name Ironic's public URL, which need not be the URL metalboot
 * reaches it by (`[api]public_endpoint`), and the node resource they point at is not served by
 * the proxy anyway; IPA reads uuid, properties, instance_info, driver_internal_info and config.
 */
export function lookupAnswerForIpa(doc: unknown, from: BaseUrl, to: BaseUrl): unknown {
  const out = rewriteLinks(doc, from, to);
  if (out === null || typeof out !== 'object' || Array.isArray(out)) return out;
  const node = (out as { node?: unknown }).node;
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return out;
  const { links: _links, ...rest } = node as Record<string, unknown>;
  return { ...out, node: rest };
}
