// PATCH bodies for the Kubernetes API server fixture: JSON Patch (RFC 6902, client-node's
// default patch content type), JSON Merge Patch (RFC 7386), and strategic merge patch, which
// the fixture applies as a merge patch. That is exact for core/v1 Event, whose fields carry no
// patchStrategy/patchMergeKey tags; `$patch`/`$retainKeys` directives are not interpreted.

export const PATCH_CONTENT_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

export type PatchResult =
  | { readonly kind: 'ok'; readonly value: unknown }
  | { readonly kind: 'error'; readonly message: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

function decodePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = Record<string, unknown> | unknown[];

function resolveParent(doc: unknown, tokens: readonly string[]): { parent: Container; key: string } | undefined {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isPlainObject(cur)) cur = cur[t];
    else return undefined;
  }
  const key = tokens[tokens.length - 1];
  if (key === undefined || !(Array.isArray(cur) || isPlainObject(cur))) return undefined;
  return { parent: cur, key };
}

function getAt(doc: unknown, tokens: readonly string[]): { found: boolean; value: unknown } {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(cur) && /^\d+$/.test(t) && Number(t) < cur.length) cur = cur[Number(t)];
    else if (isPlainObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else return { found: false, value: undefined };
  }
  return { found: true, value: cur };
}

function removeAt(doc: unknown, tokens: readonly string[]): boolean {
  const loc = resolveParent(doc, tokens);
  if (loc === undefined) return false;
  if (Array.isArray(loc.parent)) {
    const i = Number(loc.key);
    if (!/^\d+$/.test(loc.key) || i >= loc.parent.length) return false;
    loc.parent.splice(i, 1);
    return true;
  }
  if (!Object.hasOwn(loc.parent, loc.key)) return false;
  delete loc.parent[loc.key];
  return true;
}

function addAt(doc: unknown, tokens: readonly string[], value: unknown, replace: boolean): boolean {
  const loc = resolveParent(doc, tokens);
  if (loc === undefined) return false;
  if (Array.isArray(loc.parent)) {
    const i = loc.key === '-' ? loc.parent.length : Number(loc.key);
    if (loc.key !== '-' && !/^\d+$/.test(loc.key)) return false;
    if (replace) {
      if (i >= loc.parent.length) return false;
      loc.parent[i] = value;
    } else {
      if (i > loc.parent.length) return false;
      loc.parent.splice(i, 0, value);
    }
    return true;
  }
  if (replace && !Object.hasOwn(loc.parent, loc.key)) return false;
  loc.parent[loc.key] = value;
  return true;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 6902 on a copy of `target`; the whole patch fails if any operation fails. */
export function applyJsonPatch(target: unknown, patch: unknown): PatchResult {
  if (!Array.isArray(patch))
    return { kind: 'error', message: 'json: cannot unmarshal object into Go value of type jsonpatch.Patch' };
  let doc: unknown = structuredClone(target);
  for (const [index, op] of patch.entries()) {
    if (!isPlainObject(op) || typeof op['op'] !== 'string' || typeof op['path'] !== 'string') {
      return { kind: 'error', message: `operation ${index} lacks op or path` };
    }
    const path = decodePointer(op['path']);
    if (path === undefined) return { kind: 'error', message: `invalid JSON pointer ${JSON.stringify(op['path'])}` };
    const failed = (why: string): PatchResult => ({
      kind: 'error',
      message: `${op['op']} operation does not apply: ${why}`,
    });
    switch (op['op']) {
      case 'add':
      case 'replace':
        if (path.length === 0) doc = structuredClone(op['value']);
        else if (!addAt(doc, path, structuredClone(op['value']), op['op'] === 'replace'))
          return failed(`doc is missing path: "${op['path']}"`);
        break;
      case 'remove':
        if (!removeAt(doc, path)) return failed(`doc is missing path: "${op['path']}"`);
        break;
      case 'move':
      case 'copy': {
        const from = typeof op['from'] === 'string' ? decodePointer(op['from']) : undefined;
        if (from === undefined) return failed('invalid from');
        const got = getAt(doc, from);
        if (!got.found) return failed(`doc is missing from path: "${String(op['from'])}"`);
        if (op['op'] === 'move') removeAt(doc, from);
        if (!addAt(doc, path, structuredClone(got.value), false)) return failed(`doc is missing path: "${op['path']}"`);
        break;
      }
      case 'test': {
        const got = getAt(doc, path);
        if (!got.found || !deepEqual(got.value, op['value']))
          return { kind: 'error', message: `testing value ${op['path']} failed: test failed` };
        break;
      }
      default:
        return { kind: 'error', message: `Unexpected kind: ${String(op['op'])}` };
    }
  }
  return { kind: 'ok', value: doc };
}
