// Label and field selectors for the Kubernetes API server fixture.
//
// Label selectors: the set-based grammar of k8s.io/apimachinery/pkg/labels (`a=b`, `a==b`,
// `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, comma = AND). Not supported: `a>1`, `a<1`
// (numeric comparisons) and key/value syntax validation. Field selectors: `f=v`, `f==v`, `f!=v`
// over the fields a resource declares (metadata.name and metadata.namespace for custom
// resources; the server rejects any other field with 400, as the real one does, with the
// message of that resource's field label conversion).

export type Requirement =
  | { readonly op: 'exists' | 'notexists'; readonly key: string }
  | { readonly op: 'in' | 'notin'; readonly key: string; readonly values: readonly string[] };

export type SelectorParse<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'error'; readonly message: string };

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '(') depth += 1;
    else if (ch === ')') depth -= 1;
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

const SET_RE = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$/;
const EQ_RE = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/;
const KEY_RE = /^(!?)\s*([^\s!=(),]+)$/;

export function parseLabelSelector(text: string): SelectorParse<readonly Requirement[]> {
  if (text.trim() === '') return { kind: 'ok', value: [] };
  const reqs: Requirement[] = [];
  for (const part of splitTopLevel(text)) {
    const set = SET_RE.exec(part);
    if (set !== null) {
      const values = (set[3] ?? '').split(',').map((v) => v.trim());
      reqs.push({ op: set[2] === 'in' ? 'in' : 'notin', key: set[1] ?? '', values });
      continue;
    }
    const eq = EQ_RE.exec(part);
    if (eq !== null) {
      reqs.push({ op: eq[2] === '!=' ? 'notin' : 'in', key: eq[1] ?? '', values: [eq[3] ?? ''] });
      continue;
    }
    const key = KEY_RE.exec(part);
    if (key !== null) {
      reqs.push({ op: key[1] === '!' ? 'notexists' : 'exists', key: key[2] ?? '' });
      continue;
    }
    return {
      kind: 'error',
      message: `unable to parse requirement: found '${part}', expected: a label selector requirement`,
    };
  }
  return { kind: 'ok', value: reqs };
}

export function matchesLabels(
  reqs: readonly Requirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && r.values.includes(l[r.key] ?? '');
      case 'notin':
        // labels.Selector: `a!=b` and `a notin (b)` match objects without the label.
        return !has || !r.values.includes(l[r.key] ?? '');
      default:
        return false;
    }
  });
}

export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

/** The conversion registered for most built-in kinds (runtime.DefaultMetaV1FieldSelectorConversion). */
export function notAKnownFieldSelector(field: string): string {
  return `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`;
}

export function parseFieldSelector(
  text: string,
  supported: readonly string[],
  unsupported: (field: string) => string = (field) => `field label not supported: ${field}`,
): SelectorParse<readonly FieldRequirement[]> {
  if (text.trim() === '') return { kind: 'ok', value: [] };
  const reqs: FieldRequirement[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (m === null) return { kind: 'error', message: `invalid selector: '${text}'; can't understand '${part}'` };
    const field = m[1] ?? '';
    if (!supported.includes(field)) return { kind: 'error', message: unsupported(field) };
    reqs.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3] ?? '' });
  }
  return { kind: 'ok', value: reqs };
}

/** Reads a dotted field path (`involvedObject.name`) as the string the selector compares. */
export function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

export function matchesFields(
  reqs: readonly FieldRequirement[],
  obj: unknown,
  read: (obj: unknown, field: string) => string = fieldValue,
): boolean {
  return reqs.every((r) => (read(obj, r.field) === r.value) === (r.op === '='));
}
