// Validation rules of the Kubernetes API server that the fixture's built-in kinds share, with
// the real messages (k8s.io/apimachinery pkg/util/validation and pkg/api/validation, v1.30):
// DNS-1123 names, qualified names and label values, ConfigMap/Secret keys, ObjectMeta, and
// where Go's base64 decoder reports the first bad byte of a []byte field.

import type { FieldError } from './kube-status.js';

export const DNS1123_SUBDOMAIN_MAX_LENGTH = 253;
const DNS1123_LABEL_MAX_LENGTH = 63;
const QUALIFIED_NAME_MAX_LENGTH = 63;
const LABEL_VALUE_MAX_LENGTH = 63;
/** apimachinery TotalAnnotationSizeLimitB. */
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const CONFIG_MAP_KEY_FMT = '[-._a-zA-Z0-9]+';

const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const QUALIFIED_NAME_RE = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const CONFIG_MAP_KEY_RE = new RegExp(`^${CONFIG_MAP_KEY_FMT}$`);

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** validation.RegexError, quirks included: `(e.g. 'a',  or 'b', regex used for validation is '…')`. */
function regexError(message: string, format: string, ...examples: string[]): string {
  if (examples.length === 0) return `${message} (regex used for validation is '${format}')`;
  const shown = examples.map((e) => `'${e}', `).join(' or ');
  return `${message} (e.g. ${shown}regex used for validation is '${format}')`;
}

function maxLenError(length: number): string {
  return `must be no more than ${length} characters`;
}

/** validation.IsDNS1123Subdomain. */
export function dns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (utf8Length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH) errs.push(maxLenError(DNS1123_SUBDOMAIN_MAX_LENGTH));
  if (!DNS1123_SUBDOMAIN_RE.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        'example.com',
      ),
    );
  }
  return errs;
}

/** validation.IsDNS1123Label (namespace names). */
export function dns1123LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (utf8Length(value) > DNS1123_LABEL_MAX_LENGTH) errs.push(maxLenError(DNS1123_LABEL_MAX_LENGTH));
  if (!DNS1123_LABEL_RE.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        DNS1123_LABEL_FMT,
        'my-name',
        '123-abc',
      ),
    );
  }
  return errs;
}

/**
 * apimachinery NameIsDNSSubdomain(name, prefix): a generateName prefix may end in '-', so that
 * character is masked before the check (names.go maskTrailingDash).
 */
export function nameIsDnsSubdomain(name: string, prefix: boolean): string[] {
  const masked = prefix && name.length > 1 && name.endsWith('-') ? `${name.slice(0, -1)}a` : name;
  return dns1123SubdomainErrors(masked);
}

/** validation.IsQualifiedName (label and annotation keys). */
export function qualifiedNameErrors(value: string): string[] {
  const errs: string[] = [];
  const qualifiedNameErr = (): string =>
    regexError(
      "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
      QUALIFIED_NAME_FMT,
      'MyName',
      'my.name',
      '123-abc',
    );
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0] ?? '';
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix === '') errs.push('prefix part must be non-empty');
    else for (const msg of dns1123SubdomainErrors(prefix)) errs.push(`prefix part ${msg}`);
  } else {
    return [
      `a qualified name ${qualifiedNameErr()} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name === '') errs.push('name part must be non-empty');
  else if (utf8Length(name) > QUALIFIED_NAME_MAX_LENGTH)
    errs.push(`name part ${maxLenError(QUALIFIED_NAME_MAX_LENGTH)}`);
  if (!QUALIFIED_NAME_RE.test(name)) errs.push(`name part ${qualifiedNameErr()}`);
  return errs;
}

/** validation.IsValidLabelValue. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (utf8Length(value) > LABEL_VALUE_MAX_LENGTH) errs.push(maxLenError(LABEL_VALUE_MAX_LENGTH));
  if (!LABEL_VALUE_RE.test(value)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  }
  return errs;
}

/** validation.IsConfigMapKey: the keys of ConfigMap data/binaryData and Secret data. */
export function configMapKeyErrors(value: string): string[] {
  const errs: string[] = [];
  if (utf8Length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH) errs.push(maxLenError(DNS1123_SUBDOMAIN_MAX_LENGTH));
  if (!CONFIG_MAP_KEY_RE.test(value)) {
    errs.push(
      regexError(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        CONFIG_MAP_KEY_FMT,
        'key.name',
        'KEY_NAME',
        'key-name',
      ),
    );
  }
  if (value === '.') errs.push("must not be '.'");
  else if (value === '..') errs.push("must not be '..'");
  else if (value.startsWith('..')) errs.push("must not start with '..'");
  return errs;
}

const BASE64_ALPHABET = new Set(
  Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1'),
);
const CR = 0x0d;
const LF = 0x0a;
const PAD = 0x3d;

/**
 * Where Go's base64.StdEncoding.Decode stops with CorruptInputError (`illegal base64 data at input
 * byte N`), which the JSON decoder reports for a bad []byte field; undefined if `text` decodes.
 * A transcription of encoding/base64 decodeQuantum: CR/LF are skipped, padding is required.
 */
export function base64ErrorOffset(text: string): number | undefined {
  const src = Buffer.from(text, 'utf8');
  const skipNewlines = (at: number): number => {
    let i = at;
    while (i < src.length && (src[i] === CR || src[i] === LF)) i += 1;
    return i;
  };
  let si = 0;
  for (;;) {
    for (let j = 0; j < 4; j += 1) {
      if (si === src.length) return j === 0 ? undefined : si - j;
      const c = src[si] ?? 0;
      si += 1;
      if (BASE64_ALPHABET.has(c)) continue;
      if (c === CR || c === LF) {
        j -= 1;
        continue;
      }
      if (c !== PAD || j < 2) return si - 1;
      if (j === 2) {
        // "==" is expected; the first '=' is consumed.
        si = skipNewlines(si);
        if (si === src.length) return src.length;
        if (src[si] !== PAD) return si - 1;
        si += 1;
      }
      si = skipNewlines(si);
      return si < src.length ? si : undefined;
    }
  }
}

/** The ObjectMeta fields the fixture reads; the rest of ObjectMeta passes through untouched. */
export interface MetaFields {
  readonly name?: unknown;
  readonly generateName?: unknown;
  readonly namespace?: unknown;
  readonly labels?: unknown;
  readonly annotations?: unknown;
}

/**
 * apimachinery ValidateObjectMeta for a namespaced object: name (or generateName) through
 * `nameFn`, namespace as a DNS label, label keys and values, annotation keys and total size.
 */
export function validateObjectMeta(
  meta: MetaFields,
  nameFn: (name: string, prefix: boolean) => string[],
): FieldError[] {
  const errs: FieldError[] = [];
  const invalid = (field: string, value: unknown, detail: string): void => {
    errs.push({ type: 'FieldValueInvalid', field, value, detail });
  };
  const generateName = typeof meta.generateName === 'string' ? meta.generateName : '';
  if (generateName !== '')
    for (const m of nameFn(generateName, true)) invalid('metadata.generateName', generateName, m);
  const name = typeof meta.name === 'string' ? meta.name : '';
  if (name === '') {
    errs.push({ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' });
  } else {
    for (const m of nameFn(name, false)) invalid('metadata.name', name, m);
  }
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
  if (namespace === '') errs.push({ type: 'FieldValueRequired', field: 'metadata.namespace', detail: '' });
  else for (const m of dns1123LabelErrors(namespace)) invalid('metadata.namespace', namespace, m);
  const labels = (meta.labels ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries(labels)) {
    for (const m of qualifiedNameErrors(k)) invalid('metadata.labels', k, m);
    for (const m of labelValueErrors(v)) invalid('metadata.labels', v, m);
  }
  const annotations = (meta.annotations ?? {}) as Record<string, string>;
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    // "QualifiedName except that case doesn't matter".
    for (const m of qualifiedNameErrors(k.toLowerCase())) invalid('metadata.annotations', k, m);
    size += utf8Length(k) + utf8Length(v);
  }
  if (size > ANNOTATIONS_MAX_BYTES) {
    errs.push({
      type: 'FieldValueTooLong',
      field: 'metadata.annotations',
      detail: `must have at most ${ANNOTATIONS_MAX_BYTES} bytes`,
    });
  }
  return errs;
}
