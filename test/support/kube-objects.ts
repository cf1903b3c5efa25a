// The object store behind the Kubernetes API server fixture (kube-apiserver.ts): the stored
// objects of every watchable kind, one global resourceVersion (etcd's revision) that every write
// of every kind moves, a watch-cache history per kind, and the semantics of k8s.io/apiserver's
// generic registry (registry.Store Create/Update/Delete, rest.BeforeCreate/BeforeUpdate/
// BeforeDelete), list (resourceVersion, resourceVersionMatch, limit/continue) and watch.
// Each kind brings a KindSpec (names, selectable fields) and, when writable over HTTP, a
// KindStrategy (decoding, defaulting, validation: kube-kinds.ts). kube-apiserver.ts documents
// the behaviour; this file implements it once for all kinds.

import { randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Socket } from 'node:net';

import { formatTime } from './kube-events.js';
import {
  type FieldRequirement,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  type Requirement,
} from './kube-selectors.js';
import {
  alreadyExistsStatus,
  badRequest,
  conflictStatus,
  conflictWithCause,
  deletedStatus,
  type FieldError,
  HttpFailure,
  injectedStatus,
  invalidStatus,
  type KubeStatus,
  kubeStatus,
  notFoundStatus,
  tooLargeResourceVersionStatus,
  tooOldResourceVersionStatus,
} from './kube-status.js';

export interface ObjectMeta {
  name: string;
  namespace: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  [key: string]: unknown;
}

/** Any object as stored and served: apiVersion/kind always set. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** What the store needs to know about a resource. */
export interface KindSpec {
  /** API group, '' for core/v1. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  /**
   * A built-in type: list items carry no apiVersion/kind, a BOOKMARK is the Go zero value
   * (`creationTimestamp: null`, plus `bookmarkFields`), a DELETE answers with a success Status.
   * Custom resources are unstructured: none of that.
   */
  readonly typed: boolean;
  /** metadata.generation is kept (1 on create, +1 when anything but metadata/status changes). */
  readonly generation: boolean;
  /** The field selectors the server accepts (400 for any other). */
  readonly fields: readonly string[];
  /** The 400 message for another field; kube-selectors' default when absent. */
  readonly unsupportedField?: (field: string) => string;
  /** Zero-valued fields a typed BOOKMARK carries besides metadata (`spec: {}` for a Lease). */
  readonly bookmarkFields?: Readonly<Record<string, unknown>>;
}

/** How a kind is written over HTTP: the parts of a registry strategy that differ per kind. */
export interface KindStrategy {
  readonly spec: KindSpec;
  /** rest.RESTUpdateStrategy.AllowCreateOnUpdate: a PUT of a missing object creates it. */
  readonly allowCreateOnUpdate: boolean;
  /** AllowUnconditionalUpdate: a PUT without metadata.resourceVersion is allowed. */
  readonly allowUnconditionalUpdate: boolean;
  /**
   * The request body (an object whose apiVersion, kind and namespace were checked; namespace
   * set) as the object to store: conversion, defaulting, pruning. Throws HttpFailure (400) where
   * the real decoder fails.
   */
  decode(body: Record<string, unknown>): KubeObject;
  validate(obj: KubeObject): FieldError[];
  validateUpdate(next: KubeObject, prev: KubeObject): FieldError[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/**
 * How dropWatchConnections cuts a stream:
 * - 'end': clean end of the chunked body (what timeoutSeconds does; clients see EOF)
 * - 'close': FIN at an event boundary without the terminating chunk (a proxy idling out)
 * - 'reset': TCP RST (a crashed server or a NAT drop)
 * - 'mid-chunk': half of an event's chunk is written, then the socket is closed
 */
export type DropMode = 'end' | 'close' | 'reset' | 'mid-chunk';

/** An HTTP answer: status code and JSON body. */
export interface Reply {
  readonly code: number;
  readonly body: unknown;
}

export interface ObjectStoreOptions {
  readonly initialResourceVersion: number;
  /** Events each kind's watch cache keeps for replay. */
  readonly historyLimit: number;
  /** How long a request for a resourceVersion newer than the server waits. */
  readonly tooLargeResourceVersionWaitMs: number;
  readonly now: () => Date;
  /** Called after every change: a write, a watch opened or closed. */
  readonly onChange: () => void;
  /** Resets a socket with a TCP RST (the server knows the TCP socket under a TLS one). */
  readonly resetSocket: (socket: Socket) => void;
}

export interface ObjectStore {
  /** The global resourceVersion. */
  readonly resourceVersion: number;
  readonly openWatches: number;
  /** Moves the global resourceVersion for a write of a kind the store does not hold (Events). */
  bump(): number;

  get(spec: KindSpec, namespace: string, name: string): KubeObject | undefined;
  /** Sorted by namespace/name (etcd key order). */
  list(spec: KindSpec, namespace?: string): KubeObject[];
  /**
   * Stores `input` as the new state of its object, as the registry writes it: server-managed
   * metadata (uid, creationTimestamp, generation, deletionTimestamp) carried over or set, a
   * no-op write changes nothing, emptying the finalizers of an object being deleted deletes it.
   * No validation or precondition: callers do those first. Returns what was stored (or the last
   * state, if it was deleted).
   */
  save(spec: KindSpec, input: KubeObject): KubeObject;
  /** Deletes, or with finalizers marks deleted; undefined if there is no such object. */
  remove(spec: KindSpec, namespace: string, name: string): KubeObject | undefined;

  /** POST …/{plural} */
  create(strategy: KindStrategy, namespace: string, body: unknown): Reply;
  /** PUT …/{plural}/{name} */
  update(strategy: KindStrategy, namespace: string, name: string, body: unknown): Reply;
  /** DELETE …/{plural}/{name}: DeleteOptions from the body, or else from the query. */
  delete(strategy: KindStrategy, namespace: string, name: string, body: unknown, query: URLSearchParams): Reply;
  /** GET …/{plural}/{name} */
  read(spec: KindSpec, namespace: string, name: string): Reply;
  /** GET …/{plural} */
  listReply(spec: KindSpec, namespace: string | undefined, query: URLSearchParams): Promise<Reply>;
  /** GET …/{plural}?watch=true; `started` runs once the 200 is sent. */
  watch(
    spec: KindSpec,
    namespace: string | undefined,
    query: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    started: () => void,
  ): Promise<void>;

  sendBookmark(): void;
  sendWatchError(code: number): void;
  compactHistory(): void;
  dropWatchConnections(mode: DropMode): number;
  stallWatches(): number;
}

export const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' } as const;

export const apiVersionOf = (spec: KindSpec): string =>
  spec.group === '' ? spec.version : `${spec.group}/${spec.version}`;

export function parseBool(v: string | undefined | null): boolean {
  return v !== undefined && v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

/** JSON with sorted keys, to compare objects regardless of key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function withoutKeys(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

export function keyOf(obj: { metadata: { namespace: string; name: string } }): string {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
}

const GENERATE_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** names.SimpleNameGenerator: the prefix cut to 58 characters, then five random characters. */
export function generateName(prefix: string): string {
  let suffix = '';
  for (const b of randomBytes(5)) suffix += GENERATE_NAME_ALPHABET[b % GENERATE_NAME_ALPHABET.length];
  return prefix.slice(0, 58) + suffix;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function decodeContinue(token: string): { rv: number; start: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { v, rv, start } = parsed as Record<string, unknown>;
    if (v !== 'meta.k8s.io/v1' || typeof rv !== 'number' || typeof start !== 'string') return undefined;
    return { rv, start };
  } catch {
    return undefined;
  }
}

function listOptionsInvalid(
  field: string,
  detail: string,
  type: 'FieldValueForbidden' | 'FieldValueNotSupported' = 'FieldValueForbidden',
  value?: unknown,
): HttpFailure {
  return new HttpFailure(invalidStatus('ListOptions', 'meta.k8s.io', '', [{ type, field, detail, value }]));
}

function parseRv(value: string): number {
  if (!/^\d+$/.test(value)) throw badRequest(`invalid resource version: ${JSON.stringify(value)}`);
  return Number(value);
}

/** The key etcd stores an object under (storage errors quote it). */
function storageKey(spec: KindSpec, namespace: string, name: string): string {
  return `/registry/${spec.group === '' || spec.typed ? '' : `${spec.group}/`}${spec.plural}/${namespace}/${name}`;
}

/** Server-managed ObjectMeta fields: never taken from a writer. */
const SERVER_META = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
] as const;

type HistoryEntry = {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
  readonly prev: KubeObject | undefined;
};

type KindState = {
  readonly objects: Map<string, KubeObject>;
  readonly history: HistoryEntry[];
  // The watch cache's window: with nothing evicted since the last (re)initialisation the oldest
  // servable version is that initialisation's version; after an eviction it is one before the
  // oldest kept event (watch_cache.go getAllEventsSinceLocked).
  baseRv: number;
  evicted: boolean;
};

type Watcher = {
  readonly spec: KindSpec;
  readonly res: http.ServerResponse;
  readonly socket: Socket;
  readonly namespace: string | undefined;
  readonly labels: readonly Requirement[];
  readonly fields: readonly FieldRequirement[];
  readonly bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
  stalled: boolean;
};

type Selection = Pick<Watcher, 'namespace' | 'labels' | 'fields'>;

export function createObjectStore(options: ObjectStoreOptions): ObjectStore {
  const { historyLimit, now, onChange, resetSocket } = options;
  let rv = options.initialResourceVersion;
  let compactedAt = rv;
  const kinds = new Map<KindSpec, KindState>();
  const watchers = new Set<Watcher>();
  const rvWaiters = new Set<() => void>();

  const clone = <T>(v: T): T => structuredClone(v);

  function changed(): void {
    for (const w of [...rvWaiters]) w();
    onChange();
  }

  function stateOf(spec: KindSpec): KindState {
    let state = kinds.get(spec);
    if (state === undefined) {
      state = { objects: new Map(), history: [], baseRv: compactedAt, evicted: false };
      kinds.set(spec, state);
    }
    return state;
  }

  function watchFloor(state: KindState): number {
    const first = state.history[0];
    return state.evicted && first !== undefined ? first.rv - 1 : state.baseRv;
  }

  function commit(spec: KindSpec, type: HistoryEntry['type'], object: KubeObject, prev: KubeObject | undefined) {
    const state = stateOf(spec);
    rv += 1;
    object.metadata.resourceVersion = String(rv);
    if (type === 'DELETED') state.objects.delete(keyOf(object));
    else state.objects.set(keyOf(object), object);
    const entry: HistoryEntry = { rv, type, object, prev };
    state.history.push(entry);
    while (state.history.length > historyLimit) {
      state.history.shift();
      state.evicted = true;
    }
    for (const w of watchers) if (w.spec === spec) deliver(w, entry);
    changed();
    return clone(object);
  }

  /** The objects of a kind as they were at `at` (caller checks at ≥ watchFloor()). */
  function stateAt(state: KindState, at: number): Map<string, KubeObject> {
    const snapshot = new Map(state.objects);
    for (let i = state.history.length - 1; i >= 0; i -= 1) {
      const e = state.history[i];
      if (e === undefined || e.rv <= at) break;
      if (e.prev === undefined) snapshot.delete(keyOf(e.object));
      else snapshot.set(keyOf(e.prev), e.prev);
    }
    return snapshot;
  }

  function sorted(objects: Iterable<KubeObject>, key: (o: KubeObject) => string = keyOf): KubeObject[] {
    return [...objects].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  // ---------------------------------------------------------------- writes

  function save(spec: KindSpec, input: KubeObject): KubeObject {
    const { name, namespace } = input.metadata;
    const prev = stateOf(spec).objects.get(`${namespace}/${name}`);
    const next = clone(input);
    next.apiVersion = apiVersionOf(spec);
    next.kind = spec.kind;
    const meta = withoutKeys(next.metadata, SERVER_META) as ObjectMeta;
    next.metadata = meta;
    if (prev === undefined) {
      meta.uid = randomUUID();
      meta.creationTimestamp = formatTime(now());
      if (spec.generation) meta.generation = 1;
      return commit(spec, 'ADDED', next, undefined);
    }
    const bodyOf = (o: KubeObject): string => canonical(withoutKeys(o, ['apiVersion', 'kind', 'metadata', 'status']));
    meta.uid = prev.metadata.uid;
    meta.creationTimestamp = prev.metadata.creationTimestamp;
    if (spec.generation) meta.generation = (prev.metadata.generation ?? 1) + (bodyOf(next) === bodyOf(prev) ? 0 : 1);
    // An update can never remove or change a deletion timestamp (rest.BeforeUpdate).
    if (prev.metadata.deletionTimestamp !== undefined) {
      meta.deletionTimestamp = prev.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = prev.metadata.deletionGracePeriodSeconds ?? 0;
    }
    meta.resourceVersion = prev.metadata.resourceVersion;
    if (canonical(next) === canonical(prev)) return clone(prev);
    if (meta.deletionTimestamp !== undefined && (meta.finalizers ?? []).length === 0) {
      // registry.Store deletes the stored object: the DELETED event carries its last state.
      return commit(spec, 'DELETED', clone(prev), prev);
    }
    return commit(spec, 'MODIFIED', next, prev);
  }

  function remove(spec: KindSpec, namespace: string, name: string): KubeObject | undefined {
    const prev = stateOf(spec).objects.get(`${namespace}/${name}`);
    if (prev === undefined) return undefined;
    if ((prev.metadata.finalizers ?? []).length === 0) return commit(spec, 'DELETED', clone(prev), prev);
    if (prev.metadata.deletionTimestamp !== undefined) return clone(prev);
    const next = clone(prev);
    next.metadata.deletionTimestamp = formatTime(now());
    next.metadata.deletionGracePeriodSeconds = 0;
    if (spec.generation) next.metadata.generation = (prev.metadata.generation ?? 1) + 1;
    return commit(spec, 'MODIFIED', next, prev);
  }

  /** The checks the handler does before the strategy sees a body (apiVersion, kind, namespace). */
  function decodeBody(strategy: KindStrategy, body: unknown, namespace: string): KubeObject {
    const { spec } = strategy;
    const gv = apiVersionOf(spec);
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('the body of the request was in an unknown format');
    const raw = clone(body) as Record<string, unknown>;
    if (raw['apiVersion'] !== undefined && raw['apiVersion'] !== gv) {
      throw badRequest(
        `the API version in the data (${String(raw['apiVersion'])}) does not match the expected API version (${gv})`,
      );
    }
    if (raw['kind'] !== undefined && raw['kind'] !== spec.kind)
      throw badRequest(`the kind in the data (${String(raw['kind'])}) does not match the expected kind (${spec.kind})`);
    const meta = raw['metadata'] ?? {};
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta))
      throw badRequest(`${spec.kind} in version "${spec.version}" cannot be handled as a ${spec.kind}: metadata`);
    const m = meta as Record<string, unknown>;
    if (m['namespace'] !== undefined && m['namespace'] !== '' && m['namespace'] !== namespace)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    m['namespace'] = namespace;
    raw['metadata'] = m;
    const obj = strategy.decode(raw);
    obj.apiVersion = gv;
    obj.kind = spec.kind;
    return obj;
  }

  function invalid(spec: KindSpec, name: string, errs: readonly FieldError[]): HttpFailure {
    return new HttpFailure(invalidStatus(spec.kind, spec.group, name, errs));
  }

  /** storage.Preconditions.Check failing inside GuaranteedUpdate, as the registry reports it. */
  function storagePreconditionFailed(spec: KindSpec, namespace: string, name: string, detail: string): HttpFailure {
    const key = storageKey(spec, namespace, name);
    return new HttpFailure(
      conflictWithCause(
        spec.plural,
        spec.group,
        name,
        `StorageError: invalid object, Code: 4, Key: ${key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ${detail}`,
      ),
    );
  }

  function create(strategy: KindStrategy, namespace: string, body: unknown): Reply {
    const { spec } = strategy;
    const obj = decodeBody(strategy, body, namespace);
    const meta = obj.metadata;
    if ((meta.name ?? '') === '' && typeof meta.generateName === 'string' && meta.generateName !== '')
      meta.name = generateName(meta.generateName);
    const errs = strategy.validate(obj);
    if (errs.length > 0) throw invalid(spec, meta.name ?? '', errs);
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      // etcd3 store.Create refuses it with a plain error, which the handler reports as a 500.
      throw new HttpFailure(
        kubeStatus(500, 'resourceVersion should not be set on objects to be created', 'InternalError'),
      );
    }
    if (stateOf(spec).objects.has(`${namespace}/${meta.name}`))
      throw new HttpFailure(alreadyExistsStatus(spec.plural, spec.group, meta.name));
    return { code: 201, body: save(spec, obj) };
  }

  function update(strategy: KindStrategy, namespace: string, name: string, body: unknown): Reply {
    const { spec } = strategy;
    const obj = decodeBody(strategy, body, namespace);
    const meta = obj.metadata;
    if (meta.name !== name) {
      throw badRequest(
        `the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`,
      );
    }
    const existing = stateOf(spec).objects.get(`${namespace}/${name}`);
    // A uid in the body is a storage precondition, checked before anything else (even existence).
    const uid = typeof meta.uid === 'string' ? meta.uid : '';
    const storedUid = existing?.metadata.uid ?? '';
    if (uid !== '' && uid !== storedUid)
      throw storagePreconditionFailed(
        spec,
        namespace,
        name,
        `UID in precondition: ${uid}, UID in object meta: ${storedUid}`,
      );
    if (existing === undefined) {
      if (!strategy.allowCreateOnUpdate) throw new HttpFailure(notFoundStatus(spec.plural, spec.group, name));
      // Create on update: rest.BeforeCreate, and storage ignores the resourceVersion sent.
      delete meta.resourceVersion;
      const errs = strategy.validate(obj);
      if (errs.length > 0) throw invalid(spec, name, errs);
      return { code: 201, body: save(spec, obj) };
    }
    const precondition = meta.resourceVersion ?? '';
    if (precondition === '') {
      if (!strategy.allowUnconditionalUpdate) {
        // registry.Store.Update: the "kind" it reports is the resource (a long-standing TODO there).
        throw new HttpFailure(
          invalidStatus(spec.plural, spec.group, name, [
            {
              type: 'FieldValueInvalid',
              field: 'metadata.resourceVersion',
              printedValue: '0x0',
              detail: 'must be specified for an update',
            },
          ]),
        );
      }
    } else if (precondition !== existing.metadata.resourceVersion) {
      throw new HttpFailure(conflictStatus(spec.plural, spec.group, name));
    }
    meta.uid = existing.metadata.uid;
    meta.creationTimestamp = existing.metadata.creationTimestamp;
    const errs = strategy.validateUpdate(obj, existing);
    if (errs.length > 0) throw invalid(spec, name, errs);
    const saved = save(spec, obj);
    if (spec.typed && !stateOf(spec).objects.has(`${namespace}/${name}`))
      return { code: 200, body: deletedStatus(spec.plural, spec.group, name, saved.metadata.uid ?? '') };
    return { code: 200, body: saved };
  }

  function deleteOptions(body: unknown, query: URLSearchParams): Record<string, unknown> {
    if (body === undefined) {
      const out: Record<string, unknown> = {};
      const policy = query.get('propagationPolicy');
      if (policy !== null) out['propagationPolicy'] = policy;
      return out;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('the body of the request was in an unknown format');
    return body as Record<string, unknown>;
  }

  function del(strategy: KindStrategy, namespace: string, name: string, body: unknown, query: URLSearchParams): Reply {
    const { spec } = strategy;
    const existing = stateOf(spec).objects.get(`${namespace}/${name}`);
    if (existing === undefined) throw new HttpFailure(notFoundStatus(spec.plural, spec.group, name));
    const options = deleteOptions(body, query);
    const policy = options['propagationPolicy'];
    if (policy !== undefined && policy !== null && !['Foreground', 'Background', 'Orphan'].includes(String(policy))) {
      throw new HttpFailure(
        invalidStatus('DeleteOptions', 'meta.k8s.io', '', [
          {
            type: 'FieldValueNotSupported',
            field: 'propagationPolicy',
            value: policy,
            detail: 'supported values: "Foreground", "Background", "Orphan", "nil"',
          },
        ]),
      );
    }
    // rest.BeforeDelete checks the preconditions against the object just read, and reports a
    // mismatch as a Conflict on the *Kind* (`Secret "x"`), not on the resource.
    const pre = (options['preconditions'] ?? {}) as Record<string, unknown>;
    const { uid, resourceVersion } = existing.metadata;
    if (typeof pre['uid'] === 'string' && pre['uid'] !== uid) {
      throw new HttpFailure(
        conflictWithCause(
          spec.kind,
          spec.group,
          name,
          `the UID in the precondition (${pre['uid']}) does not match the UID in record (${uid ?? ''}). The object might have been deleted and then recreated`,
        ),
      );
    }
    if (typeof pre['resourceVersion'] === 'string' && pre['resourceVersion'] !== resourceVersion) {
      throw new HttpFailure(
        conflictWithCause(
          spec.kind,
          spec.group,
          name,
          `the ResourceVersion in the precondition (${pre['resourceVersion']}) does not match the ResourceVersion in record (${resourceVersion ?? ''}). The object might have been modified`,
        ),
      );
    }
    const out = remove(spec, namespace, name);
    if (out === undefined || stateOf(spec).objects.has(`${namespace}/${name}`)) return { code: 200, body: out };
    return {
      code: 200,
      body: spec.typed ? deletedStatus(spec.plural, spec.group, name, uid ?? '') : out,
    };
  }

  function read(spec: KindSpec, namespace: string, name: string): Reply {
    const found = stateOf(spec).objects.get(`${namespace}/${name}`);
    if (found === undefined) throw new HttpFailure(notFoundStatus(spec.plural, spec.group, name));
    return { code: 200, body: clone(found) };
  }

  // ---------------------------------------------------------------- list

  function waitForRv(target: number): Promise<boolean> {
    if (rv >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (rv >= target) finish(true);
      };
      const timer = setTimeout(() => finish(false), options.tooLargeResourceVersionWaitMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        rvWaiters.delete(check);
        resolve(ok);
      };
      rvWaiters.add(check);
    });
  }

  function parseSelectors(
    q: URLSearchParams,
    spec: KindSpec,
  ): { labels: readonly Requirement[]; fields: readonly FieldRequirement[] } {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    if (labels.kind === 'error') throw badRequest(labels.message);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', spec.fields, spec.unsupportedField);
    if (fields.kind === 'error') throw badRequest(fields.message);
    return { labels: labels.value, fields: fields.value };
  }

  function matches(w: Selection, obj: KubeObject): boolean {
    return (
      (w.namespace === undefined || obj.metadata.namespace === w.namespace) &&
      matchesLabels(w.labels, obj.metadata.labels) &&
      matchesFields(w.fields, obj)
    );
  }

  async function listReply(spec: KindSpec, namespace: string | undefined, q: URLSearchParams): Promise<Reply> {
    const state = stateOf(spec);
    const rvParam = q.get('resourceVersion') ?? '';
    const match = q.get('resourceVersionMatch') ?? '';
    const continueToken = q.get('continue') ?? '';
    const limitParam = q.has('limit') ? Number(q.get('limit')) : undefined;
    if (match !== '') {
      if (match !== 'Exact' && match !== 'NotOlderThan') {
        throw listOptionsInvalid(
          'resourceVersionMatch',
          'supported values: "Exact", "NotOlderThan", ""',
          'FieldValueNotSupported',
          match,
        );
      }
      if (rvParam === '')
        throw listOptionsInvalid(
          'resourceVersionMatch',
          'resourceVersionMatch is forbidden unless resourceVersion is provided',
        );
      if (continueToken !== '')
        throw listOptionsInvalid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
      if (match === 'Exact' && rvParam === '0')
        throw listOptionsInvalid(
          'resourceVersionMatch',
          'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
        );
    }
    if (limitParam !== undefined && (!Number.isInteger(limitParam) || limitParam < 0))
      throw badRequest(`invalid limit: ${q.get('limit') ?? ''}`);
    const { labels, fields } = parseSelectors(q, spec);
    const selected: Selection = { namespace, labels, fields };

    let snapshot: Map<string, KubeObject>;
    let listRv: number;
    let start = '';
    let limit = limitParam !== undefined && limitParam > 0 ? limitParam : undefined;
    if (continueToken !== '') {
      if (rvParam !== '' && rvParam !== '0')
        throw badRequest('specifying resource version is not allowed when using continue');
      const token = decodeContinue(continueToken);
      if (token === undefined)
        throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      if (token.rv < watchFloor(state)) {
        throw new HttpFailure(
          kubeStatus(
            410,
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
            'Expired',
          ),
        );
      }
      snapshot = stateAt(state, token.rv);
      listRv = token.rv;
      start = token.start;
    } else if (rvParam === '') {
      snapshot = state.objects;
      listRv = rv;
    } else if (rvParam === '0') {
      snapshot = state.objects;
      listRv = rv;
      limit = undefined;
    } else {
      const wanted = parseRv(rvParam);
      if (wanted > rv && !(await waitForRv(wanted))) throw new HttpFailure(tooLargeResourceVersionStatus(wanted, rv));
      if (match === 'Exact') {
        if (wanted < watchFloor(state))
          throw new HttpFailure(kubeStatus(410, 'The resourceVersion for the provided list is too old.', 'Expired'));
        snapshot = stateAt(state, wanted);
        listRv = wanted;
      } else {
        snapshot = state.objects;
        listRv = rv;
      }
    }

    const relKey = (o: KubeObject): string => (namespace === undefined ? keyOf(o) : o.metadata.name);
    const all = sorted(
      [...snapshot.values()].filter((o) => matches(selected, o)),
      relKey,
    ).filter((o) => relKey(o) >= start);
    const page = limit === undefined ? all : all.slice(0, limit);
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    const last = page[page.length - 1];
    if (page.length < all.length && last !== undefined) {
      metadata['continue'] = encodeContinue(listRv, `${relKey(last)}\u0000`);
      if (labels.length === 0 && fields.length === 0) metadata['remainingItemCount'] = all.length - page.length;
    }
    // Typed (built-in) list items carry no apiVersion/kind on the wire; unstructured ones do.
    const items = page.map((o) => (spec.typed ? withoutKeys(clone(o), ['apiVersion', 'kind']) : clone(o)));
    return { code: 200, body: { apiVersion: apiVersionOf(spec), items, kind: `${spec.kind}List`, metadata } };
  }

  // ---------------------------------------------------------------- watch

  function write(w: Watcher, type: WatchEventType, object: unknown): void {
    if (w.closed || w.stalled) return;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  function deliver(w: Watcher, e: HistoryEntry): void {
    const after = e.type !== 'DELETED' && matches(w, e.object);
    const before = e.type === 'DELETED' ? matches(w, e.object) : e.prev !== undefined && matches(w, e.prev);
    if (e.type === 'DELETED') {
      if (before) write(w, 'DELETED', e.object);
    } else if (after && before) write(w, 'MODIFIED', e.object);
    else if (after) write(w, 'ADDED', e.object);
    else if (before) write(w, 'DELETED', e.object);
  }

  function bookmarkObject(spec: KindSpec, annotations?: Record<string, string>): unknown {
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (annotations !== undefined) metadata['annotations'] = annotations;
    // A typed bookmark is the type's zero value with only the version set; Go prints the
    // zero metav1.Time as null.
    if (spec.typed) metadata['creationTimestamp'] = null;
    return { kind: spec.kind, apiVersion: apiVersionOf(spec), metadata, ...(spec.bookmarkFields ?? {}) };
  }

  function closeWatcher(w: Watcher): void {
    if (w.closed) return;
    w.closed = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    watchers.delete(w);
    onChange();
  }

  function endWatcher(w: Watcher, mode: DropMode): void {
    if (w.closed) return;
    closeWatcher(w);
    switch (mode) {
      case 'end':
        w.res.end();
        break;
      case 'close':
        w.socket.end();
        break;
      case 'reset':
        resetSocket(w.socket);
        break;
      case 'mid-chunk': {
        const line = `${JSON.stringify({ type: 'MODIFIED', object: bookmarkObject(w.spec) })}\n`;
        const bytes = Buffer.from(line);
        const partial = Buffer.concat([
          Buffer.from(`${bytes.length.toString(16)}\r\n`),
          bytes.subarray(0, bytes.length >> 1),
        ]);
        w.socket.write(partial, () => w.socket.destroy());
        break;
      }
    }
  }

  async function watch(
    spec: KindSpec,
    namespace: string | undefined,
    q: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    started: () => void,
  ): Promise<void> {
    const state = stateOf(spec);
    const rvParam = q.get('resourceVersion') ?? '';
    const match = q.get('resourceVersionMatch') ?? '';
    const bookmarks = parseBool(q.get('allowWatchBookmarks'));
    const sendInitialEvents = q.has('sendInitialEvents') ? parseBool(q.get('sendInitialEvents')) : undefined;
    if (sendInitialEvents !== undefined) {
      if (match !== 'NotOlderThan') {
        throw listOptionsInvalid(
          'resourceVersionMatch',
          'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
        );
      }
      if (sendInitialEvents && !bookmarks)
        throw listOptionsInvalid(
          'allowWatchBookmarks',
          'sendInitialEvents requires setting allowWatchBookmarks to true',
        );
    } else if (match !== '') {
      throw listOptionsInvalid(
        'resourceVersionMatch',
        'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided',
      );
    }
    const { labels, fields } = parseSelectors(q, spec);
    const wanted = rvParam === '' || rvParam === '0' ? undefined : parseRv(rvParam);
    let error: KubeStatus | undefined;
    if (wanted !== undefined && wanted > rv && !(await waitForRv(wanted)))
      error = tooLargeResourceVersionStatus(wanted, rv);
    if (res.destroyed || req.socket.destroyed) return;

    res.writeHead(200, { ...JSON_HEADERS, 'Audit-Id': randomUUID() });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    started();
    const w: Watcher = {
      spec,
      res,
      socket: req.socket,
      namespace,
      labels,
      fields,
      bookmarks,
      timer: undefined,
      closed: false,
      stalled: false,
    };
    res.on('close', () => closeWatcher(w));

    if (error === undefined && wanted !== undefined && sendInitialEvents !== true && wanted < watchFloor(state)) {
      error = tooOldResourceVersionStatus(wanted, watchFloor(state));
    }
    if (error !== undefined) {
      // cacher.go newErrWatcher: one ERROR event, then the stream ends.
      write(w, 'ERROR', error);
      w.closed = true;
      res.end();
      return;
    }
    if (wanted === undefined || sendInitialEvents === true) {
      for (const o of sorted([...state.objects.values()].filter((o) => matches(w, o)))) write(w, 'ADDED', o);
      if (sendInitialEvents === true)
        write(w, 'BOOKMARK', bookmarkObject(spec, { 'k8s.io/initial-events-end': 'true' }));
    } else {
      for (const e of state.history) if (e.rv > wanted) deliver(w, e);
    }
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '0');
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      w.timer = setTimeout(() => endWatcher(w, 'end'), timeoutSeconds * 1000);
    }
    watchers.add(w);
    onChange();
  }

  return {
    get resourceVersion() {
      return rv;
    },
    get openWatches() {
      return watchers.size;
    },
    bump() {
      rv += 1;
      changed();
      return rv;
    },
    get(spec, namespace, name) {
      const o = stateOf(spec).objects.get(`${namespace}/${name}`);
      return o === undefined ? undefined : clone(o);
    },
    list(spec, namespace) {
      return sorted(
        [...stateOf(spec).objects.values()].filter(
          (o) => namespace === undefined || o.metadata.namespace === namespace,
        ),
      ).map(clone);
    },
    save,
    remove,
    create,
    update,
    delete: del,
    read,
    listReply,
    watch,
    sendBookmark() {
      for (const w of watchers) if (w.bookmarks) write(w, 'BOOKMARK', bookmarkObject(w.spec));
    },
    sendWatchError(code) {
      for (const w of [...watchers]) {
        write(w, 'ERROR', injectedStatus(code));
        endWatcher(w, 'end');
      }
    },
    compactHistory() {
      compactedAt = rv;
      for (const state of kinds.values()) {
        state.history.length = 0;
        state.baseRv = rv;
        state.evicted = false;
      }
    },
    dropWatchConnections(mode) {
      const open = [...watchers];
      for (const w of open) endWatcher(w, mode);
      return open.length;
    },
    stallWatches() {
      for (const w of watchers) {
        w.stalled = true;
        if (w.timer !== undefined) clearTimeout(w.timer);
      }
      return watchers.size;
    },
  };
}
