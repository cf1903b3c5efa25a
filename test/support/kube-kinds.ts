// The kinds the Kubernetes API server fixture stores in kube-objects.ts, and how the built-in
// ones are written over HTTP: decoding (what the JSON decoder refuses with 400), defaulting,
// pruning of unknown fields, and validation (422), after pkg/apis/core/validation and
// pkg/apis/coordination/validation of Kubernetes v1.30.

import type { KindSpec, KindStrategy, KubeObject, ObjectMeta } from './kube-objects.js';
import { notAKnownFieldSelector } from './kube-selectors.js';
import { badRequest, type FieldError, type HttpFailure } from './kube-status.js';
import { base64ErrorOffset, configMapKeyErrors, nameIsDnsSubdomain, validateObjectMeta } from './kube-validation.js';

export const BMH_SPEC: KindSpec = {
  group: 'metal3.io',
  version: 'v1alpha1',
  plural: 'baremetalhosts',
  kind: 'BareMetalHost',
  typed: false,
  generation: true,
  fields: ['metadata.name', 'metadata.namespace'],
};

export const SECRET_SPEC: KindSpec = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  typed: true,
  generation: false,
  // core/v1 registers its own conversion for Secrets (AddFieldLabelConversionsForSecret).
  fields: ['metadata.name', 'metadata.namespace', 'type'],
};

export const CONFIG_MAP_SPEC: KindSpec = {
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  typed: true,
  generation: false,
  fields: ['metadata.name', 'metadata.namespace'],
  unsupportedField: notAKnownFieldSelector,
};

export const LEASE_SPEC: KindSpec = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  typed: true,
  generation: false,
  fields: ['metadata.name', 'metadata.namespace'],
  unsupportedField: notAKnownFieldSelector,
  // LeaseSpec is a struct: Go's encoder never omits it.
  bookmarkFields: { spec: {} },
};

/** core.MaxSecretSize: the bound on a Secret's data and on a ConfigMap's data plus binaryData. */
export const MAX_DATA_BYTES = 1024 * 1024;

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(?:Z|[+-]\d{2}:\d{2})$/;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

/** The 400 the create/update handler answers when the body does not decode (transformDecodeError). */
function decodeError(kind: string, version: string, detail: string): HttpFailure {
  return badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: ${detail}`);
}

function typeError(kind: string, version: string, field: string, value: unknown, goType: string): HttpFailure {
  return decodeError(
    kind,
    version,
    `json: cannot unmarshal ${jsonType(value)} into Go struct field ${kind}.${field} of type ${goType}`,
  );
}

const META_STRINGS = [
  'name',
  'generateName',
  'namespace',
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'deletionTimestamp',
] as const;

/**
 * ObjectMeta as the typed decoder keeps it: known fields only, empty ones dropped (omitempty),
 * selfLink and managedFields dropped (the fixture keeps neither).
 */
function decodeMeta(kind: string, version: string, raw: Record<string, unknown>): ObjectMeta {
  const out: Record<string, unknown> = {};
  for (const k of META_STRINGS) {
    const v = raw[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw typeError(kind, version, `metadata.${k}`, v, 'string');
    out[k] = v;
  }
  for (const k of ['generation', 'deletionGracePeriodSeconds'] as const) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(kind, version, `metadata.${k}`, v, 'int64');
    if (v !== 0) out[k] = v;
  }
  for (const k of ['labels', 'annotations'] as const) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (!isPlainObject(v)) throw typeError(kind, version, `metadata.${k}`, v, 'map[string]string');
    for (const value of Object.values(v))
      if (typeof value !== 'string') throw typeError(kind, version, `metadata.${k}`, value, 'string');
    if (Object.keys(v).length > 0) out[k] = v;
  }
  for (const k of ['finalizers', 'ownerReferences'] as const) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) throw typeError(kind, version, `metadata.${k}`, v, '[]string');
    if (v.length > 0) out[k] = v;
  }
  return out as ObjectMeta;
}

/** A map[string][]byte field: every value base64 (Go's decoder); stored re-encoded canonically. */
function decodeBytesMap(kind: string, field: string, raw: unknown): Record<string, string> | undefined {
  const version = 'v1';
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) throw typeError(kind, version, field, raw, 'map[string][]uint8');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) {
      out[k] = '';
      continue;
    }
    if (typeof v !== 'string') throw typeError(kind, version, field, v, '[]uint8');
    const bad = base64ErrorOffset(v);
    if (bad !== undefined) throw decodeError(kind, version, `illegal base64 data at input byte ${bad}`);
    out[k] = Buffer.from(v, 'base64').toString('base64');
  }
  return out;
}

function decodeStringMap(kind: string, field: string, raw: unknown): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) throw typeError(kind, 'v1', field, raw, 'map[string]string');
  for (const v of Object.values(raw)) if (typeof v !== 'string') throw typeError(kind, 'v1', field, v, 'string');
  return raw as Record<string, string>;
}

function decodeBool(kind: string, field: string, raw: unknown): boolean | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'boolean') throw typeError(kind, 'v1', field, raw, 'bool');
  return raw;
}

/** Sets `key` only when `value` is a non-empty map or a defined scalar (Go's omitempty). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) return;
  if (isPlainObject(value) && Object.keys(value).length === 0) return;
  target[key] = value;
}

const byteLength = (base64: string): number => Buffer.from(base64, 'base64').length;

function keyErrors(field: string, keys: Iterable<string>): FieldError[] {
  const errs: FieldError[] = [];
  for (const k of keys)
    for (const detail of configMapKeyErrors(k))
      errs.push({ type: 'FieldValueInvalid', field: `${field}[${k}]`, value: k, detail });
  return errs;
}

const IMMUTABLE_SET = 'field is immutable when `immutable` is set';

const sameMap = (a: unknown, b: unknown): boolean =>
  JSON.stringify(Object.entries((a ?? {}) as Record<string, string>).sort()) ===
  JSON.stringify(Object.entries((b ?? {}) as Record<string, string>).sort());

// ---------------------------------------------------------------- Secret

/** A stored core/v1 Secret: data base64, type defaulted, stringData already merged into data. */
export interface StoredSecret extends KubeObject {
  apiVersion: 'v1';
  kind: 'Secret';
  data?: Record<string, string>;
  type: string;
  immutable?: boolean;
}

function validateSecret(obj: KubeObject): FieldError[] {
  const errs = validateObjectMeta(obj.metadata, nameIsDnsSubdomain);
  const data = (obj['data'] ?? {}) as Record<string, string>;
  errs.push(...keyErrors('data', Object.keys(data)));
  const total = Object.values(data).reduce((n, v) => n + byteLength(v), 0);
  if (total > MAX_DATA_BYTES)
    errs.push({ type: 'FieldValueTooLong', field: 'data', detail: `must have at most ${MAX_DATA_BYTES} bytes` });
  return errs;
}

export const SECRET_STRATEGY: KindStrategy = {
  spec: SECRET_SPEC,
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  decode(raw) {
    const metadata = decodeMeta('Secret', 'v1', raw['metadata'] as Record<string, unknown>);
    const data = decodeBytesMap('Secret', 'data', raw['data']) ?? {};
    // Convert_v1_Secret_To_core_Secret: stringData overwrites data, and is not stored.
    const stringData = decodeStringMap('Secret', 'stringData', raw['stringData']) ?? {};
    for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v, 'utf8').toString('base64');
    const type = raw['type'];
    if (type !== undefined && type !== null && typeof type !== 'string')
      throw typeError('Secret', 'v1', 'type', type, 'v1.SecretType');
    const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'Secret', metadata };
    put(out, 'data', data);
    out['type'] = typeof type === 'string' && type !== '' ? type : 'Opaque';
    put(out, 'immutable', decodeBool('Secret', 'immutable', raw['immutable']));
    return out as KubeObject;
  },
  validate: validateSecret,
  validateUpdate(next, prev) {
    const errs: FieldError[] = [];
    if (next['type'] !== prev['type'])
      errs.push({ type: 'FieldValueInvalid', field: 'type', value: next['type'], detail: 'field is immutable' });
    if (prev['immutable'] === true) {
      if (next['immutable'] !== true)
        errs.push({ type: 'FieldValueForbidden', field: 'immutable', detail: IMMUTABLE_SET });
      if (!sameMap(next['data'], prev['data']))
        errs.push({ type: 'FieldValueForbidden', field: 'data', detail: IMMUTABLE_SET });
    }
    return [...errs, ...validateSecret(next)];
  },
};

// ---------------------------------------------------------------- ConfigMap

/** A stored core/v1 ConfigMap. */
export interface StoredConfigMap extends KubeObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

function validateConfigMap(obj: KubeObject): FieldError[] {
  const errs = validateObjectMeta(obj.metadata, nameIsDnsSubdomain);
  const data = (obj['data'] ?? {}) as Record<string, string>;
  const binary = (obj['binaryData'] ?? {}) as Record<string, string>;
  let total = 0;
  for (const [k, v] of Object.entries(data)) {
    errs.push(...keyErrors('data', [k]));
    if (Object.hasOwn(binary, k))
      errs.push({
        type: 'FieldValueInvalid',
        field: `data[${k}]`,
        value: k,
        detail: 'duplicate of key present in binaryData',
      });
    total += Buffer.byteLength(v, 'utf8');
  }
  for (const [k, v] of Object.entries(binary)) {
    errs.push(...keyErrors('binaryData', [k]));
    if (Object.hasOwn(data, k))
      errs.push({
        type: 'FieldValueInvalid',
        field: `binaryData[${k}]`,
        value: k,
        detail: 'duplicate of key present in data',
      });
    total += byteLength(v);
  }
  // field.NewPath("") prints as "[]": `ConfigMap "x" is invalid: []: Too long: …`.
  if (total > MAX_DATA_BYTES)
    errs.push({ type: 'FieldValueTooLong', field: '[]', detail: `must have at most ${MAX_DATA_BYTES} bytes` });
  return errs;
}

export const CONFIG_MAP_STRATEGY: KindStrategy = {
  spec: CONFIG_MAP_SPEC,
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  decode(raw) {
    const metadata = decodeMeta('ConfigMap', 'v1', raw['metadata'] as Record<string, unknown>);
    const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'ConfigMap', metadata };
    put(out, 'data', decodeStringMap('ConfigMap', 'data', raw['data']));
    put(out, 'binaryData', decodeBytesMap('ConfigMap', 'binaryData', raw['binaryData']));
    put(out, 'immutable', decodeBool('ConfigMap', 'immutable', raw['immutable']));
    return out as KubeObject;
  },
  validate: validateConfigMap,
  validateUpdate(next, prev) {
    const errs: FieldError[] = [];
    if (prev['immutable'] === true) {
      if (next['immutable'] !== true)
        errs.push({ type: 'FieldValueForbidden', field: 'immutable', detail: IMMUTABLE_SET });
      if (!sameMap(next['data'], prev['data']))
        errs.push({ type: 'FieldValueForbidden', field: 'data', detail: IMMUTABLE_SET });
      if (!sameMap(next['binaryData'], prev['binaryData']))
        errs.push({ type: 'FieldValueForbidden', field: 'binaryData', detail: IMMUTABLE_SET });
    }
    return [...errs, ...validateConfigMap(next)];
  },
};

// ---------------------------------------------------------------- Lease

export const LEASE_API_VERSION = 'coordination.k8s.io/v1';

/** A coordination.k8s.io/v1 Lease as stored and served. */
export interface StoredLease extends KubeObject {
  apiVersion: typeof LEASE_API_VERSION;
  kind: 'Lease';
  spec: Record<string, unknown>;
}

function validateLease(obj: KubeObject): FieldError[] {
  const errs = validateObjectMeta(obj.metadata, nameIsDnsSubdomain);
  const spec = obj['spec'] as Record<string, unknown>;
  const duration = spec['leaseDurationSeconds'];
  if (typeof duration === 'number' && duration <= 0)
    errs.push({
      type: 'FieldValueInvalid',
      field: 'spec.leaseDurationSeconds',
      value: duration,
      detail: 'must be greater than 0',
    });
  const transitions = spec['leaseTransitions'];
  if (typeof transitions === 'number' && transitions < 0) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'spec.leaseTransitions',
      value: transitions,
      detail: 'must be greater than or equal to 0',
    });
  }
  return errs;
}

export const LEASE_STRATEGY: KindStrategy = {
  spec: LEASE_SPEC,
  // leaseStrategy: a PUT may create, and must carry a resourceVersion when it updates.
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: false,
  decode(raw) {
    const metadata = decodeMeta('Lease', 'v1', raw['metadata'] as Record<string, unknown>);
    const rawSpec = raw['spec'] ?? {};
    if (!isPlainObject(rawSpec)) throw typeError('Lease', 'v1', 'spec', rawSpec, 'v1.LeaseSpec');
    const spec: Record<string, unknown> = {};
    const holder = rawSpec['holderIdentity'];
    if (holder !== undefined && holder !== null) {
      if (typeof holder !== 'string') throw typeError('Lease', 'v1', 'spec.holderIdentity', holder, 'string');
      spec['holderIdentity'] = holder;
    }
    for (const field of ['leaseDurationSeconds', 'leaseTransitions']) {
      const v = rawSpec[field];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('Lease', 'v1', `spec.${field}`, v, 'int32');
      spec[field] = v;
    }
    // metav1.MicroTime decodes with the fixed layout RFC3339Micro: exactly six fractional
    // digits, so JavaScript's toISOString() (three) is refused before validation runs.
    for (const field of ['acquireTime', 'renewTime']) {
      const v = rawSpec[field];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string' || !MICRO_TIME.test(v)) {
        throw decodeError(
          'Lease',
          'v1',
          `parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
        );
      }
      spec[field] = v;
    }
    return { apiVersion: LEASE_API_VERSION, kind: 'Lease', metadata, spec };
  },
  validate: validateLease,
  validateUpdate: (next) => validateLease(next),
};
