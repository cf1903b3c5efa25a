/** BareMetalHost manifests (multi-document YAML, as users `kubectl apply` them) → HostRecords. Pure. */
import { parseAllDocuments } from 'yaml';
import { bmhToHost, isBareMetalHost } from './bmh.js';
import type { HostRecord } from './host.js';
import { MetalbootError } from '../base/errors.js';

export interface ManifestLoad {
  readonly hosts: HostRecord[];
  /** Documents that are BareMetalHosts but could not be turned into a host at all. */
  readonly skipped: { readonly name: string; readonly reason: string }[];
}

/** Throws an Error with code METALBOOT_MANIFEST_INVALID when the YAML itself is broken. */
export function parseBmhManifests(text: string, from: string, annotationPrefix: string): ManifestLoad {
  const hosts: HostRecord[] = [];
  const skipped: { name: string; reason: string }[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new MetalbootError('SOURCE_ERR_MANIFEST', `document ${i + 1}: ${e.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    // Secrets and other kinds live in the same files; only BareMetalHosts matter here.
    if (!isBareMetalHost(value)) return;
    const r = bmhToHost(value, { annotationPrefix, from });
    if (r.kind === 'host') hosts.push(r.host);
    else skipped.push({ name: value.metadata?.name ?? `document ${i + 1}`, reason: r.reason });
  });
  return { hosts, skipped };
}
