// An in-process Kubernetes API server for tests of code built on @kubernetes/client-node.
//
// It serves metal3.io/v1alpha1 baremetalhosts (list, get, watch) and core/v1 + events.k8s.io/v1
// events (create, patch, update, get, list) over real HTTP (or HTTPS with the test CA in
// kube-tls.ts) on 127.0.0.1, and exposes test controls as methods: change hosts, emit
// bookmarks, compact the watch history, cut or stall watch connections, inject failures, go away.
//
// Faithful to the real kube-apiserver (k8s.io/apiserver, v1.30-era behaviour):
// - One global, monotonically increasing resourceVersion shared by every object (etcd's
//   revision): writing an Event moves it too, so BareMetalHost versions are not contiguous.
//   Clients must treat it as opaque; the fixture starts at 1000 to make that visible.
// - metadata.uid, creationTimestamp (RFC 3339 seconds), generation (1 on create, +1 when
//   anything but metadata/status changes, or when deletionTimestamp is set). A no-op write
//   changes nothing and emits no event. A delete of a host with finalizers sets
//   deletionTimestamp (MODIFIED); removing the last finalizer then deletes it (DELETED).
// - List: `{apiVersion, kind: "BareMetalHostList", metadata: {resourceVersion, continue?,
//   remainingItemCount?}, items}`, items sorted by namespace/name (etcd key order), each with
//   apiVersion/kind (custom resources are unstructured). resourceVersion semantics:
//   unset → most recent, honours limit; "0" → any (served "from cache": limit ignored);
//   N + resourceVersionMatch=NotOlderThan (or unset) → most recent, at least N;
//   N + Exact → the state at exactly N, 410 "The resourceVersion for the provided list is too
//   old." if N is before the history window. N newer than the server waits up to 3 s, then
//   504 "Too large resource version". limit/continue: continue tokens are the real format
//   (base64url `{"v":"meta.k8s.io/v1","rv":N,"start":"key\u0000"}`) and every page is served
//   from the first page's snapshot; an expired token gives 410. ListOptions are validated
//   as the server does (resourceVersionMatch without resourceVersion → 422, …).
// - Watch (`?watch=true`): HTTP 200, chunked, one JSON event per line and per chunk,
//   `{type: ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object}`. No/zero resourceVersion →
//   synthetic ADDED for every current object, then changes. N → every change after N,
//   replayed from a bounded history (the watch cache: `historyLimit` events), then live.
//   N older than the window → 200, one ERROR event carrying Status 410 Expired
//   "too old resource version: N (oldest)", then the stream ends — exactly as the watch
//   cache does (cacher.go newErrWatcher); N newer than the server → ERROR 504 after 3 s.
//   DELETED carries the last state with the deletion's resourceVersion. With a label or
//   field selector, an object that stops matching arrives as DELETED and one that starts
//   matching as ADDED. BOOKMARK (only with allowWatchBookmarks=true) carries just
//   `{kind, apiVersion, metadata: {resourceVersion}}` at the current global version.
//   sendInitialEvents=true (watch-list) ends its initial ADDED events with a BOOKMARK
//   annotated "k8s.io/initial-events-end": "true". timeoutSeconds ends the stream cleanly.
//   `…/baremetalhosts/{name}?watch=true` watches that one object.
// - Errors are metav1.Status bodies with the real reasons and messages (kube-status.ts);
//   a bearer token, when configured, is required (401 Status otherwise).
// - Events: POST 201 with the stored object (uid, resourceVersion, creationTimestamp,
//   generateName honoured), 409 AlreadyExists, 422 with the legacy/strict validation of
//   pkg/apis/core/validation/events.go, namespace mismatch 400; PATCH with
//   application/json-patch+json (client-node's default), merge-patch+json and
//   strategic-merge-patch+json; PUT; metadata.resourceVersion as a precondition (409);
//   list with field selectors (involvedObject.name, reason, type, …). events.k8s.io/v1 is
//   served from the same store with the real field renames (regarding, note, …).
// - Leases (coordination.k8s.io/v1, namespaced): spec.acquireTime/renewTime must be MicroTime
//   with exactly six fractional digits (400 otherwise, as the real decoder refuses
//   toISOString()'s three); GET, POST (201; 409 AlreadyExists), PUT
//   with metadata.resourceVersion as the precondition (409 Conflict when stale; an update
//   without one is unconditional, as for any built-in type), DELETE (200 with the last state),
//   list (namespaced or across namespaces). Writes move the global resourceVersion; a no-op
//   update keeps it.
//
// Simplified (documented so nobody relies on it):
// - One history window serves both watch replay and Exact/continue lists (the real server
//   answers those from etcd, whose compaction window is usually longer).
// - The fixture never sends bookmarks on its own unless `bookmarkIntervalMs` is set; the
//   real server sends one about every minute and just before timeoutSeconds ends a watch.
//   Without timeoutSeconds a watch stays open until dropped (the real server ends it after
//   a random 30–60 min).
// - Baremetalhosts are read-only over HTTP (405 for writes: tests change them with the
//   controls); no status-subresource writes, no admission webhooks, no schema validation.
// - Leases: no watch, no PATCH, no field or label selectors, spec is stored unvalidated.
// - Events: no watch, no DELETE, limit ignored on event lists, unknown fields kept, no
//   server-side apply (415), strategic merge patch applied as a JSON merge patch (exact for
//   Event, which has no merge keys). Namespaces are never checked for existence.
// - Label selectors: no `>`/`<` operators and no syntax validation of keys and values.
// - Only JSON (no protobuf, no Table); no RBAC (use failNext(n, 403) to simulate a denial);
//   /healthz, /livez, /readyz and /version answer without a token.
// - pauseAvailability('refuse') re-listens on the same port on resume(); a different process
//   could in theory take the port meanwhile.

import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

import {
  CORE_EVENT_FIELDS,
  type CoreEvent,
  EVENTS_V1_FIELDS,
  eventFieldValue,
  formatTime,
  fromEventsV1,
  normalizeCoreEvent,
  toEventsV1,
  validateEventCreate,
} from './kube-events.js';
import { applyJsonPatch, applyMergePatch, PATCH_CONTENT_TYPES } from './kube-patch.js';
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
  conflictStatus,
  injectedStatus,
  invalidStatus,
  type KubeStatus,
  kubeStatus,
  notFoundStatus,
  tooLargeResourceVersionStatus,
  tooOldResourceVersionStatus,
  unknownResourceStatus,
} from './kube-status.js';
import { TEST_KUBE_CA_PEM, TEST_KUBE_SERVER_CERT_PEM, TEST_KUBE_SERVER_KEY_PEM } from './kube-tls.js';

export type { CoreEvent } from './kube-events.js';
export type { KubeStatus } from './kube-status.js';

export const BMH_GROUP = 'metal3.io';
export const BMH_VERSION = 'v1alpha1';
export const BMH_API_VERSION = 'metal3.io/v1alpha1';
export const BMH_PLURAL = 'baremetalhosts';
export const BMH_KIND = 'BareMetalHost';

export interface ObjectMeta {
  name: string;
  namespace: string;
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

/** A BareMetalHost as stored and served: server-managed metadata filled in. */
export interface BareMetalHost {
  apiVersion: typeof BMH_API_VERSION;
  kind: typeof BMH_KIND;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What tests pass to upsertHost: server-managed fields are ignored, namespace defaults to "default". */
export interface HostInput {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    [key: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

export const LEASE_API_VERSION = 'coordination.k8s.io/v1';

/** A coordination.k8s.io/v1 Lease as stored and served. */
export interface StoredLease {
  apiVersion: typeof LEASE_API_VERSION;
  kind: 'Lease';
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface RequestRecord {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly watch: boolean;
  /** The HTTP status sent; undefined until the response starts (or if the socket was reset). */
  readonly status: number | undefined;
}

/**
 * How dropWatchConnections cuts a stream:
 * - 'end': clean end of the chunked body (what timeoutSeconds does; clients see EOF)
 * - 'close': FIN at an event boundary without the terminating chunk (a proxy idling out)
 * - 'reset': TCP RST (a crashed server or a NAT drop)
 * - 'mid-chunk': half of an event's chunk is written, then the socket is closed
 */
export type DropMode = 'end' | 'close' | 'reset' | 'mid-chunk';

/**
 * How the server is "away" while paused (open watches are reset in every mode):
 * - 'refuse': the listener is closed (ECONNREFUSED); nothing reaches `requests`
 * - 'reset': connections are accepted and reset at once (ECONNRESET); nothing reaches `requests`
 * - '503': every request gets 503 ServiceUnavailable (and is logged)
 */
export type AwayMode = 'refuse' | 'reset' | '503';

export interface KubeApiServerOptions {
  /** Require `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Serve HTTPS with the test server certificate (kube-tls.ts); clients trust TEST_KUBE_CA_PEM. */
  readonly tls?: boolean;
  /** Hosts present before the first request. */
  readonly hosts?: readonly HostInput[];
  /** The global resourceVersion before the first write (default 1000). */
  readonly initialResourceVersion?: number;
  /** Events the watch cache keeps for replay (default 100). */
  readonly historyLimit?: number;
  /** Send BOOKMARK events to watches that asked for them at this interval (default: never). */
  readonly bookmarkIntervalMs?: number;
  /** How long a request for a resourceVersion newer than the server waits (default 3000, as the real one). */
  readonly tooLargeResourceVersionWaitMs?: number;
  readonly now?: () => Date;
}

export interface KubeApiServer {
  /** `http://127.0.0.1:<port>` or `https://…`. */
  readonly url: string;
  readonly port: number;
  /** PEM of the CA clients must trust (tls only). */
  readonly ca: string | undefined;
  readonly token: string | undefined;
  /** Every request received, in order. */
  readonly requests: readonly RequestRecord[];
  /** Watch streams currently open. */
  readonly openWatches: number;
  /** The current global resourceVersion. */
  readonly resourceVersion: string;

  upsertHost(input: HostInput): BareMetalHost;
  /** Deletes (or, with finalizers, marks deleted); undefined if there is no such host. */
  deleteHost(namespace: string, name: string): BareMetalHost | undefined;
  /** Replaces status (the status subresource: generation unchanged); undefined if absent. */
  setStatus(namespace: string, name: string, status: Record<string, unknown>): BareMetalHost | undefined;
  host(namespace: string, name: string): BareMetalHost | undefined;
  hosts(namespace?: string): BareMetalHost[];

  /** A BOOKMARK at the current resourceVersion to every watch that allowed bookmarks. */
  sendBookmark(): void;
  /** An ERROR event with this status on every open watch, which then ends (as the server does). */
  sendWatchError(code?: number): void;
  /** Forget the watch history: the next watch or Exact list from an older version gets 410. */
  compactHistory(): void;
  /** Cuts every open watch stream; returns how many were cut. */
  dropWatchConnections(mode?: DropMode): number;
  /**
   * Open watch streams stay open but receive nothing more, not even the end of a timeout
   * (a silent network partition); returns how many. Cut them with dropWatchConnections().
   */
  stallWatches(): number;
  /** The next n requests (that `match`, if given) get this status as a metav1.Status. */
  failNext(n: number, status?: number, match?: (request: RequestRecord) => boolean): void;
  /** Go away (open watches are reset) until resume(). */
  pauseAvailability(mode?: AwayMode): Promise<void>;
  resume(): Promise<void>;

  /** Stored events in core/v1 shape (apiVersion/kind set), in creation order. */
  events(namespace?: string): CoreEvent[];
  /** A stored coordination.k8s.io/v1 Lease, as served; undefined if absent. */
  lease(namespace: string, name: string): StoredLease | undefined;
  /** Resolves when `condition` holds, re-checked on every request, write and watch change. */
  waitFor(condition: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

type HistoryEntry = {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: BareMetalHost;
  readonly prev: BareMetalHost | undefined;
};

type Watcher = {
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

type MutableRecord = { -readonly [K in keyof RequestRecord]: RequestRecord[K] };

type ListQuery = {
  readonly resourceVersion: string | undefined;
  readonly resourceVersionMatch: string | undefined;
  readonly continueToken: string | undefined;
  readonly limit: number | undefined;
  readonly labelSelector: string;
  readonly fieldSelector: string;
};

class HttpFailure extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

const BMH_FIELDS = ['metadata.name', 'metadata.namespace'] as const;
const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' } as const;
const MAX_BODY_BYTES = 3 * 1024 * 1024;
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(?:Z|[+-]\d{2}:\d{2})$/;
const GENERATE_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function parseBool(v: string | undefined): boolean {
  return v !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

/** JSON with sorted keys, to compare objects regardless of key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function withoutKeys(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

function keyOf(obj: { metadata: { namespace: string; name: string } }): string {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
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

function badRequest(message: string): HttpFailure {
  return new HttpFailure(kubeStatus(400, message, 'BadRequest'));
}

function listOptionsInvalid(
  field: string,
  detail: string,
  type: 'FieldValueForbidden' | 'FieldValueNotSupported' = 'FieldValueForbidden',
  value?: unknown,
): HttpFailure {
  return new HttpFailure(invalidStatus('ListOptions', 'meta.k8s.io', '', [{ type, field, detail, value }]));
}

/** Starts the fixture on 127.0.0.1 with an ephemeral port. */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const now = options.now ?? (() => new Date());
  const historyLimit = options.historyLimit ?? 100;
  const tooLargeWaitMs = options.tooLargeResourceVersionWaitMs ?? 3000;
  const token = options.token;

  let rv = options.initialResourceVersion ?? 1000;
  const hosts = new Map<string, BareMetalHost>();
  const history: HistoryEntry[] = [];
  // The watch cache's window: with nothing evicted since the last (re)initialisation the oldest
  // servable version is that initialisation's version; after an eviction it is one before the
  // oldest kept event (watch_cache.go getAllEventsSinceLocked).
  let baseRv = rv;
  let evicted = false;
  const storedEvents = new Map<string, CoreEvent>();
  const storedLeases = new Map<string, StoredLease>();
  const watchers = new Set<Watcher>();
  const failRules: { remaining: number; status: number; match: ((r: RequestRecord) => boolean) | undefined }[] = [];
  const requests: MutableRecord[] = [];
  const listeners = new Set<() => void>();
  const sockets = new Set<Socket>();
  // TCP sockets by remote endpoint: with TLS, a reset must go to the socket under the TLSSocket.
  const tcpSockets = new Map<string, Socket>();
  let away: AwayMode | undefined;
  let closed = false;

  const notify = (): void => {
    for (const l of [...listeners]) l();
  };

  const clone = <T>(v: T): T => structuredClone(v);

  function watchFloor(): number {
    const first = history[0];
    return evicted && first !== undefined ? first.rv - 1 : baseRv;
  }

  function commit(type: HistoryEntry['type'], object: BareMetalHost, prev: BareMetalHost | undefined): BareMetalHost {
    rv += 1;
    object.metadata.resourceVersion = String(rv);
    if (type === 'DELETED') hosts.delete(keyOf(object));
    else hosts.set(keyOf(object), object);
    const entry: HistoryEntry = { rv, type, object, prev };
    history.push(entry);
    while (history.length > historyLimit) {
      history.shift();
      evicted = true;
    }
    for (const w of watchers) deliver(w, entry);
    notify();
    return clone(object);
  }

  /** The hosts as they were at `at` (caller checks at ≥ watchFloor()). */
  function stateAt(at: number): Map<string, BareMetalHost> {
    const state = new Map(hosts);
    for (let i = history.length - 1; i >= 0; i -= 1) {
      const e = history[i];
      if (e === undefined || e.rv <= at) break;
      if (e.prev === undefined) state.delete(keyOf(e.object));
      else state.set(keyOf(e.prev), e.prev);
    }
    return state;
  }

  function matches(w: Pick<Watcher, 'namespace' | 'labels' | 'fields'>, obj: BareMetalHost): boolean {
    return (
      (w.namespace === undefined || obj.metadata.namespace === w.namespace) &&
      matchesLabels(w.labels, obj.metadata.labels) &&
      matchesFields(w.fields, obj)
    );
  }

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

  function bookmarkObject(annotations?: Record<string, string>): unknown {
    return {
      kind: BMH_KIND,
      apiVersion: BMH_API_VERSION,
      metadata: { resourceVersion: String(rv), ...(annotations === undefined ? {} : { annotations }) },
    };
  }

  function closeWatcher(w: Watcher): void {
    if (w.closed) return;
    w.closed = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    watchers.delete(w);
    notify();
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
        const line = `${JSON.stringify({ type: 'MODIFIED', object: bookmarkObject() })}\n`;
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

  function resetSocket(socket: Socket): void {
    const tcp = tcpSockets.get(`${socket.remoteAddress}:${socket.remotePort}`) ?? socket;
    if (tcp.destroyed) socket.destroy();
    else tcp.resetAndDestroy();
  }

  function waitForRv(target: number): Promise<boolean> {
    if (rv >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (rv >= target) finish(true);
      };
      const timer = setTimeout(() => finish(false), tooLargeWaitMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        listeners.delete(check);
        resolve(ok);
      };
      listeners.add(check);
    });
  }

  function parseRv(value: string): number {
    if (!/^\d+$/.test(value)) throw badRequest(`invalid resource version: ${JSON.stringify(value)}`);
    return Number(value);
  }

  function parseSelectors(
    q: URLSearchParams,
    fieldNames: readonly string[],
  ): { labels: readonly Requirement[]; fields: readonly FieldRequirement[] } {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    if (labels.kind === 'error') throw badRequest(labels.message);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', fieldNames);
    if (fields.kind === 'error') throw badRequest(fields.message);
    return { labels: labels.value, fields: fields.value };
  }

  // ---------------------------------------------------------------- baremetalhosts: list

  async function listHosts(namespace: string | undefined, q: URLSearchParams): Promise<unknown> {
    const opts: ListQuery = {
      resourceVersion: q.get('resourceVersion') ?? undefined,
      resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
      continueToken: q.get('continue') ?? undefined,
      limit: q.has('limit') ? Number(q.get('limit')) : undefined,
      labelSelector: q.get('labelSelector') ?? '',
      fieldSelector: q.get('fieldSelector') ?? '',
    };
    const rvParam = opts.resourceVersion ?? '';
    const match = opts.resourceVersionMatch ?? '';
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
      if (opts.continueToken !== undefined)
        throw listOptionsInvalid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
      if (match === 'Exact' && rvParam === '0')
        throw listOptionsInvalid(
          'resourceVersionMatch',
          'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
        );
    }
    if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0))
      throw badRequest(`invalid limit: ${q.get('limit') ?? ''}`);
    const { labels, fields } = parseSelectors(q, BMH_FIELDS);
    const selected = { namespace, labels, fields };

    let snapshot: Map<string, BareMetalHost>;
    let listRv: number;
    let start = '';
    let limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : undefined;
    if (opts.continueToken !== undefined && opts.continueToken !== '') {
      if (rvParam !== '' && rvParam !== '0')
        throw badRequest('specifying resource version is not allowed when using continue');
      const token = decodeContinue(opts.continueToken);
      if (token === undefined)
        throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      if (token.rv < watchFloor()) {
        throw new HttpFailure(
          kubeStatus(
            410,
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
            'Expired',
          ),
        );
      }
      snapshot = stateAt(token.rv);
      listRv = token.rv;
      start = token.start;
    } else if (rvParam === '') {
      snapshot = hosts;
      listRv = rv;
    } else if (rvParam === '0') {
      snapshot = hosts;
      listRv = rv;
      limit = undefined;
    } else {
      const wanted = parseRv(rvParam);
      if (wanted > rv && !(await waitForRv(wanted))) throw new HttpFailure(tooLargeResourceVersionStatus(wanted, rv));
      if (match === 'Exact') {
        if (wanted < watchFloor())
          throw new HttpFailure(kubeStatus(410, 'The resourceVersion for the provided list is too old.', 'Expired'));
        snapshot = stateAt(wanted);
        listRv = wanted;
      } else {
        snapshot = hosts;
        listRv = rv;
      }
    }

    const relKey = (h: BareMetalHost): string => (namespace === undefined ? keyOf(h) : h.metadata.name);
    const all = [...snapshot.values()]
      .filter((h) => matches(selected, h))
      .sort((a, b) => (relKey(a) < relKey(b) ? -1 : relKey(a) > relKey(b) ? 1 : 0))
      .filter((h) => relKey(h) >= start);
    const page = limit === undefined ? all : all.slice(0, limit);
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    const last = page[page.length - 1];
    if (page.length < all.length && last !== undefined) {
      metadata['continue'] = encodeContinue(listRv, `${relKey(last)}\u0000`);
      if (labels.length === 0 && fields.length === 0) metadata['remainingItemCount'] = all.length - page.length;
    }
    return { apiVersion: BMH_API_VERSION, items: page.map(clone), kind: `${BMH_KIND}List`, metadata };
  }

  // ---------------------------------------------------------------- baremetalhosts: watch

  async function watchHosts(
    namespace: string | undefined,
    q: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: MutableRecord,
  ): Promise<void> {
    const rvParam = q.get('resourceVersion') ?? '';
    const match = q.get('resourceVersionMatch') ?? '';
    const bookmarks = parseBool(q.get('allowWatchBookmarks') ?? undefined);
    const sendInitialEvents = q.has('sendInitialEvents')
      ? parseBool(q.get('sendInitialEvents') ?? undefined)
      : undefined;
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
    const { labels, fields } = parseSelectors(q, BMH_FIELDS);
    const wanted = rvParam === '' || rvParam === '0' ? undefined : parseRv(rvParam);
    let error: KubeStatus | undefined;
    if (wanted !== undefined && wanted > rv && !(await waitForRv(wanted)))
      error = tooLargeResourceVersionStatus(wanted, rv);
    if (res.destroyed || req.socket.destroyed) return;

    res.writeHead(200, { ...JSON_HEADERS, 'Audit-Id': randomUUID() });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    record.status = 200;
    const w: Watcher = {
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

    if (error === undefined && wanted !== undefined && sendInitialEvents !== true && wanted < watchFloor()) {
      error = tooOldResourceVersionStatus(wanted, watchFloor());
    }
    if (error !== undefined) {
      // cacher.go newErrWatcher: one ERROR event, then the stream ends.
      write(w, 'ERROR', error);
      w.closed = true;
      res.end();
      return;
    }
    if (wanted === undefined || sendInitialEvents === true) {
      const initial = [...hosts.values()].filter((h) => matches(w, h)).sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
      for (const h of initial) write(w, 'ADDED', h);
      if (sendInitialEvents === true) write(w, 'BOOKMARK', bookmarkObject({ 'k8s.io/initial-events-end': 'true' }));
    } else {
      for (const e of history) if (e.rv > wanted) deliver(w, e);
    }
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '0');
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      w.timer = setTimeout(() => endWatcher(w, 'end'), timeoutSeconds * 1000);
    }
    watchers.add(w);
    notify();
  }

  // ---------------------------------------------------------------- events

  function eventKey(ns: string, name: string): string {
    return `${ns}/${name}`;
  }

  function generateName(prefix: string): string {
    const bytes = randomBytes(5);
    let suffix = '';
    for (const b of bytes) suffix += GENERATE_NAME_ALPHABET[b % GENERATE_NAME_ALPHABET.length];
    return prefix + suffix;
  }

  function servedEvent(ev: CoreEvent, v1: boolean): unknown {
    return v1
      ? { ...toEventsV1(clone(ev)), apiVersion: 'events.k8s.io/v1', kind: 'Event' }
      : { ...clone(ev), apiVersion: 'v1', kind: 'Event' };
  }

  function decodeEventBody(body: unknown, v1: boolean, urlNamespace: string): CoreEvent {
    const gv = v1 ? 'events.k8s.io/v1' : 'v1';
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('the body of the request was in an unknown format');
    const raw = body as Record<string, unknown>;
    if (raw['apiVersion'] !== undefined && raw['apiVersion'] !== gv) {
      throw badRequest(
        `the API version in the data (${String(raw['apiVersion'])}) does not match the expected API version (${gv})`,
      );
    }
    if (raw['kind'] !== undefined && raw['kind'] !== 'Event')
      throw badRequest(`the kind in the data (${String(raw['kind'])}) does not match the expected kind (Event)`);
    const core = normalizeCoreEvent(v1 ? fromEventsV1(raw) : withoutKeys(raw, ['apiVersion', 'kind']));
    if (core.kind === 'error')
      throw badRequest(`Event in version "${gv}" cannot be handled as a Event: ${core.message}`);
    const meta = core.value.metadata;
    if (meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== urlNamespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    meta['namespace'] = urlNamespace;
    return core.value as unknown as CoreEvent;
  }

  function createEvent(ns: string, body: unknown, v1: boolean): { code: number; body: unknown } {
    const ev = decodeEventBody(body, v1, ns);
    const meta = ev.metadata;
    if ((meta.name ?? '') === '' && typeof meta.generateName === 'string' && meta.generateName !== '')
      meta.name = generateName(meta.generateName);
    if ((meta.name ?? '') === '') {
      throw new HttpFailure(
        invalidStatus('Event', '', '', [
          { type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' },
        ]),
      );
    }
    const errs = validateEventCreate(ev, v1 ? 'events.k8s.io/v1' : 'v1');
    if (errs.length > 0) throw new HttpFailure(invalidStatus('Event', v1 ? 'events.k8s.io' : '', meta.name, errs));
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw new HttpFailure(
        kubeStatus(500, 'resourceVersion should not be set on objects to be created', 'InternalError'),
      );
    }
    if (storedEvents.has(eventKey(ns, meta.name)))
      throw new HttpFailure(alreadyExistsStatus('events', v1 ? 'events.k8s.io' : '', meta.name));
    rv += 1;
    meta.uid = randomUUID();
    meta.resourceVersion = String(rv);
    meta.creationTimestamp = formatTime(now());
    storedEvents.set(eventKey(ns, meta.name), ev);
    notify();
    return { code: 201, body: servedEvent(ev, v1) };
  }

  function updateEvent(
    ns: string,
    name: string,
    existing: CoreEvent,
    next: CoreEvent,
    v1: boolean,
  ): { code: number; body: unknown } {
    const group = v1 ? 'events.k8s.io' : '';
    if (next.metadata.name !== name)
      throw badRequest(
        `the name of the object (${String(next.metadata.name)}) does not match the name on the URL (${name})`,
      );
    const precondition = next.metadata.resourceVersion;
    if (precondition !== undefined && precondition !== '' && precondition !== existing.metadata.resourceVersion) {
      throw new HttpFailure(conflictStatus('events', group, name));
    }
    next.metadata.uid = existing.metadata.uid;
    next.metadata.creationTimestamp = existing.metadata.creationTimestamp;
    next.metadata.resourceVersion = existing.metadata.resourceVersion;
    const errs = validateEventCreate(next, 'v1');
    if (errs.length > 0) throw new HttpFailure(invalidStatus('Event', group, name, errs));
    if (canonical(next) === canonical(existing)) return { code: 200, body: servedEvent(existing, v1) };
    rv += 1;
    next.metadata.resourceVersion = String(rv);
    storedEvents.set(eventKey(ns, name), next);
    notify();
    return { code: 200, body: servedEvent(next, v1) };
  }

  function patchEvent(
    ns: string,
    name: string,
    contentType: string,
    body: unknown,
    v1: boolean,
  ): { code: number; body: unknown } {
    const existing = storedEvents.get(eventKey(ns, name));
    if (existing === undefined) throw new HttpFailure(notFoundStatus('events', v1 ? 'events.k8s.io' : '', name));
    const current = servedEvent(existing, v1);
    let patched: unknown;
    if (contentType === PATCH_CONTENT_TYPES.json) {
      const result = applyJsonPatch(current, body);
      if (result.kind === 'error') {
        throw new HttpFailure(
          invalidStatus('Event', '', name, [
            { type: 'FieldValueInvalid', field: 'patch', value: JSON.stringify(body), detail: result.message },
          ]),
        );
      }
      patched = result.value;
    } else if (contentType === PATCH_CONTENT_TYPES.merge || contentType === PATCH_CONTENT_TYPES.strategic) {
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw badRequest('the body of the request was in an unknown format');
      patched = applyMergePatch(current, body);
    } else {
      throw new HttpFailure(
        kubeStatus(
          415,
          `the body of the request was in an unknown format - accepted media types include: ${Object.values(PATCH_CONTENT_TYPES).join(', ')}`,
          'UnsupportedMediaType',
        ),
      );
    }
    return updateEvent(ns, name, existing, decodeEventBody(patched, v1, ns), v1);
  }

  function listEvents(ns: string | undefined, q: URLSearchParams, v1: boolean): unknown {
    const { labels, fields } = parseSelectors(q, v1 ? EVENTS_V1_FIELDS : CORE_EVENT_FIELDS);
    const items = [...storedEvents.values()]
      .filter(
        (e) =>
          (ns === undefined || e.metadata.namespace === ns) &&
          matchesLabels(labels, e.metadata.labels) &&
          matchesFields(fields, e, eventFieldValue),
      )
      .map((e) => {
        const served = servedEvent(e, v1) as Record<string, unknown>;
        // Typed (built-in) list items carry no apiVersion/kind on the wire.
        return withoutKeys(served, ['apiVersion', 'kind']);
      });
    return {
      kind: 'EventList',
      apiVersion: v1 ? 'events.k8s.io/v1' : 'v1',
      metadata: { resourceVersion: String(rv) },
      items,
    };
  }

  async function handleEvents(
    req: http.IncomingMessage,
    ns: string | undefined,
    name: string | undefined,
    q: URLSearchParams,
    v1: boolean,
  ): Promise<{ code: number; body: unknown }> {
    const method = req.method ?? 'GET';
    if (parseBool(q.get('watch') ?? undefined))
      throw badRequest('watching events is not supported by this test fixture');
    if (ns === undefined) {
      if (method === 'GET') return { code: 200, body: listEvents(undefined, q, v1) };
      throw methodNotAllowed();
    }
    if (name === undefined) {
      if (method === 'GET') return { code: 200, body: listEvents(ns, q, v1) };
      if (method === 'POST') return createEvent(ns, await readJson(req), v1);
      throw methodNotAllowed();
    }
    const existing = storedEvents.get(eventKey(ns, name));
    switch (method) {
      case 'GET':
        if (existing === undefined) throw new HttpFailure(notFoundStatus('events', v1 ? 'events.k8s.io' : '', name));
        return { code: 200, body: servedEvent(existing, v1) };
      case 'PATCH': {
        const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        return patchEvent(ns, name, contentType, await readJson(req), v1);
      }
      case 'PUT': {
        if (existing === undefined) throw new HttpFailure(notFoundStatus('events', v1 ? 'events.k8s.io' : '', name));
        return updateEvent(ns, name, existing, decodeEventBody(await readJson(req), v1, ns), v1);
      }
      default:
        throw methodNotAllowed();
    }
  }

  // ---------------------------------------------------------------- leases

  function decodeLeaseBody(body: unknown, urlNamespace: string): StoredLease {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('the body of the request was in an unknown format');
    const raw = clone(body) as Record<string, unknown>;
    if (raw['apiVersion'] !== undefined && raw['apiVersion'] !== LEASE_API_VERSION) {
      throw badRequest(
        `the API version in the data (${String(raw['apiVersion'])}) does not match the expected API version (${LEASE_API_VERSION})`,
      );
    }
    if (raw['kind'] !== undefined && raw['kind'] !== 'Lease')
      throw badRequest(`the kind in the data (${String(raw['kind'])}) does not match the expected kind (Lease)`);
    const meta = (raw['metadata'] ?? {}) as Record<string, unknown>;
    if (typeof meta !== 'object' || Array.isArray(meta)) throw badRequest('metadata must be an object');
    if (meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== urlNamespace)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    meta['namespace'] = urlNamespace;
    // metav1.MicroTime decodes with the fixed layout RFC3339Micro: exactly six fractional digits,
    // so JavaScript's toISOString() (three) is refused before validation runs.
    const spec = raw['spec'];
    if (typeof spec === 'object' && spec !== null) {
      for (const field of ['acquireTime', 'renewTime']) {
        const v = (spec as Record<string, unknown>)[field];
        if (v !== undefined && v !== null && (typeof v !== 'string' || !MICRO_TIME.test(v))) {
          throw badRequest(
            `Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
          );
        }
      }
    }
    return { ...raw, apiVersion: LEASE_API_VERSION, kind: 'Lease', metadata: meta as ObjectMeta };
  }

  function createLease(ns: string, body: unknown): { code: number; body: unknown } {
    const lease = decodeLeaseBody(body, ns);
    const meta = lease.metadata;
    if ((meta.name ?? '') === '' && typeof meta['generateName'] === 'string' && meta['generateName'] !== '')
      meta.name = generateName(meta['generateName']);
    if ((meta.name ?? '') === '') {
      throw new HttpFailure(
        invalidStatus('Lease', 'coordination.k8s.io', '', [
          { type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' },
        ]),
      );
    }
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw new HttpFailure(
        kubeStatus(500, 'resourceVersion should not be set on objects to be created', 'InternalError'),
      );
    }
    if (storedLeases.has(eventKey(ns, meta.name)))
      throw new HttpFailure(alreadyExistsStatus('leases', 'coordination.k8s.io', meta.name));
    rv += 1;
    meta.uid = randomUUID();
    meta.resourceVersion = String(rv);
    meta.creationTimestamp = formatTime(now());
    storedLeases.set(eventKey(ns, meta.name), lease);
    notify();
    return { code: 201, body: clone(lease) };
  }

  function updateLease(ns: string, name: string, body: unknown): { code: number; body: unknown } {
    const existing = storedLeases.get(eventKey(ns, name));
    if (existing === undefined) throw new HttpFailure(notFoundStatus('leases', 'coordination.k8s.io', name));
    const next = decodeLeaseBody(body, ns);
    if (next.metadata.name !== name)
      throw badRequest(
        `the name of the object (${String(next.metadata.name)}) does not match the name on the URL (${name})`,
      );
    const precondition = next.metadata.resourceVersion;
    if (precondition !== undefined && precondition !== '' && precondition !== existing.metadata.resourceVersion)
      throw new HttpFailure(conflictStatus('leases', 'coordination.k8s.io', name));
    next.metadata.uid = existing.metadata.uid;
    next.metadata.creationTimestamp = existing.metadata.creationTimestamp;
    next.metadata.resourceVersion = existing.metadata.resourceVersion;
    if (canonical(next) === canonical(existing)) return { code: 200, body: clone(existing) };
    rv += 1;
    next.metadata.resourceVersion = String(rv);
    storedLeases.set(eventKey(ns, name), next);
    notify();
    return { code: 200, body: clone(next) };
  }

  async function handleLeases(
    req: http.IncomingMessage,
    ns: string | undefined,
    name: string | undefined,
    q: URLSearchParams,
  ): Promise<{ code: number; body: unknown }> {
    const method = req.method ?? 'GET';
    if (parseBool(q.get('watch') ?? undefined))
      throw badRequest('watching leases is not supported by this test fixture');
    if (name === undefined) {
      if (method === 'GET') {
        const items = [...storedLeases.values()]
          .filter((l) => ns === undefined || l.metadata.namespace === ns)
          .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1))
          // Typed (built-in) list items carry no apiVersion/kind on the wire.
          .map((l) => withoutKeys(clone(l), ['apiVersion', 'kind']));
        return {
          code: 200,
          body: { kind: 'LeaseList', apiVersion: LEASE_API_VERSION, metadata: { resourceVersion: String(rv) }, items },
        };
      }
      if (method === 'POST' && ns !== undefined) return createLease(ns, await readJson(req));
      throw methodNotAllowed();
    }
    if (ns === undefined) throw new HttpFailure(unknownResourceStatus());
    const existing = storedLeases.get(eventKey(ns, name));
    switch (method) {
      case 'GET':
        if (existing === undefined) throw new HttpFailure(notFoundStatus('leases', 'coordination.k8s.io', name));
        return { code: 200, body: clone(existing) };
      case 'PUT':
        return updateLease(ns, name, await readJson(req));
      case 'DELETE': {
        if (existing === undefined) throw new HttpFailure(notFoundStatus('leases', 'coordination.k8s.io', name));
        storedLeases.delete(eventKey(ns, name));
        rv += 1;
        existing.metadata.resourceVersion = String(rv);
        notify();
        return { code: 200, body: clone(existing) };
      }
      default:
        throw methodNotAllowed();
    }
  }

  // ---------------------------------------------------------------- HTTP plumbing

  function methodNotAllowed(): HttpFailure {
    return new HttpFailure(
      kubeStatus(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed', {}),
    );
  }

  async function readJson(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > MAX_BODY_BYTES)
        throw new HttpFailure(kubeStatus(413, 'Request entity too large: limit is 3145728', 'RequestEntityTooLarge'));
      chunks.push(buf);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch (err) {
      throw badRequest(`error decoding request body: ${(err as Error).message}`);
    }
  }

  function send(
    res: http.ServerResponse,
    record: MutableRecord,
    code: number,
    body: unknown,
    extraHeaders: Record<string, string> = {},
  ): void {
    record.status = code;
    notify();
    if (res.headersSent || res.destroyed) return;
    res.writeHead(code, { ...JSON_HEADERS, 'Audit-Id': randomUUID(), ...extraHeaders });
    res.end(`${JSON.stringify(body)}\n`);
  }

  function sendText(
    res: http.ServerResponse,
    record: MutableRecord,
    code: number,
    text: string,
    contentType = 'text/plain; charset=utf-8',
  ): void {
    record.status = code;
    notify();
    res.writeHead(code, { 'Content-Type': contentType });
    res.end(text);
  }

  const DISCOVERY: Record<string, unknown> = {
    '/api/v1': {
      kind: 'APIResourceList',
      groupVersion: 'v1',
      resources: [
        {
          name: 'events',
          singularName: 'event',
          namespaced: true,
          kind: 'Event',
          verbs: ['create', 'get', 'list', 'patch', 'update'],
          shortNames: ['ev'],
        },
      ],
    },
    '/apis/events.k8s.io/v1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'events.k8s.io/v1',
      resources: [
        {
          name: 'events',
          singularName: 'event',
          namespaced: true,
          kind: 'Event',
          verbs: ['create', 'get', 'list', 'patch', 'update'],
          shortNames: ['ev'],
        },
      ],
    },
    '/apis/coordination.k8s.io/v1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: LEASE_API_VERSION,
      resources: [
        {
          name: 'leases',
          singularName: 'lease',
          namespaced: true,
          kind: 'Lease',
          verbs: ['create', 'delete', 'get', 'list', 'update'],
        },
      ],
    },
    '/apis/metal3.io/v1alpha1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: BMH_API_VERSION,
      resources: [
        {
          name: BMH_PLURAL,
          singularName: 'baremetalhost',
          namespaced: true,
          kind: BMH_KIND,
          verbs: ['get', 'list', 'watch'],
          shortNames: ['bmh', 'bmhost'],
        },
        { name: `${BMH_PLURAL}/status`, singularName: '', namespaced: true, kind: BMH_KIND, verbs: ['get'] },
      ],
    },
  };

  const BMH_NAMESPACED = /^\/apis\/metal3\.io\/v1alpha1\/namespaces\/([^/]+)\/baremetalhosts(?:\/([^/]+)(\/status)?)?$/;
  const BMH_ALL = /^\/apis\/metal3\.io\/v1alpha1\/baremetalhosts$/;
  const CORE_EVENTS = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/;
  const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?leases(?:\/([^/]+))?$/;
  const V1_EVENTS = /^\/apis\/events\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/;

  async function route(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    record: MutableRecord,
  ): Promise<void> {
    const path = url.pathname;
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const dec = (s: string | undefined): string | undefined => (s === undefined ? undefined : decodeURIComponent(s));

    const bmhNs = BMH_NAMESPACED.exec(path);
    if (bmhNs !== null || BMH_ALL.test(path)) {
      const ns = dec(bmhNs?.[1]);
      const name = dec(bmhNs?.[2]);
      if (method !== 'GET') throw methodNotAllowed();
      if (name === undefined) {
        if (record.watch) return watchHosts(ns, q, req, res, record);
        return send(res, record, 200, await listHosts(ns, q));
      }
      if (record.watch) {
        // A watch on a named object is a watch with fieldSelector=metadata.name (handlers/get.go).
        const wanted = `metadata.name=${name}`;
        const given = q.get('fieldSelector');
        if (given !== null && given !== '' && given !== wanted)
          throw badRequest(`fieldSelector ${given} doesn't match requested name ${name}`);
        q.set('fieldSelector', wanted);
        return watchHosts(ns, q, req, res, record);
      }
      const found = ns === undefined ? undefined : hosts.get(`${ns}/${name}`);
      if (found === undefined) throw new HttpFailure(notFoundStatus(BMH_PLURAL, BMH_GROUP, name));
      return send(res, record, 200, clone(found));
    }
    const core = CORE_EVENTS.exec(path);
    const v1 = core === null ? V1_EVENTS.exec(path) : null;
    const events = core ?? v1;
    if (events !== null) {
      if (events[1] === undefined && events[2] !== undefined) throw new HttpFailure(unknownResourceStatus());
      const out = await handleEvents(req, dec(events[1]), dec(events[2]), q, v1 !== null);
      return send(res, record, out.code, out.body);
    }
    const leases = LEASES.exec(path);
    if (leases !== null) {
      const out = await handleLeases(req, dec(leases[1]), dec(leases[2]), q);
      return send(res, record, out.code, out.body);
    }
    const discovery = DISCOVERY[path];
    if (discovery !== undefined && method === 'GET') return send(res, record, 200, discovery);
    throw new HttpFailure(unknownResourceStatus());
  }

  const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (away === 'reset') {
      resetSocket(req.socket);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://fixture');
    const record: MutableRecord = {
      seq: requests.length,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      watch: parseBool(url.searchParams.get('watch') ?? undefined),
      status: undefined,
    };
    requests.push(record);
    notify();
    try {
      if (away === '503') throw new HttpFailure(injectedStatus(503));
      const rule = failRules.find((r) => r.remaining > 0 && (r.match === undefined || r.match(record)));
      if (rule !== undefined) {
        rule.remaining -= 1;
        const status = injectedStatus(rule.status);
        return send(res, record, rule.status, status, rule.status === 429 ? { 'Retry-After': '1' } : {});
      }
      if (PUBLIC_PATHS.has(url.pathname)) {
        if (url.pathname === '/version') {
          return send(res, record, 200, {
            major: '1',
            minor: '30',
            gitVersion: 'v1.30.0-metalboot-fixture',
            platform: 'linux/amd64',
          });
        }
        return sendText(res, record, 200, 'ok');
      }
      if (token !== undefined) {
        const auth = req.headers.authorization ?? '';
        const m = /^bearer\s+(.+)$/i.exec(auth);
        if (m === null || m[1] !== token) throw new HttpFailure(kubeStatus(401, 'Unauthorized', 'Unauthorized'));
      }
      await route(req, res, url, record);
    } catch (err) {
      if (err instanceof HttpFailure) return send(res, record, err.status.code, err.status);
      return send(
        res,
        record,
        500,
        kubeStatus(500, `Internal error occurred: ${(err as Error).message}`, 'InternalError'),
      );
    }
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void onRequest(req, res);
  };
  const server: http.Server = options.tls
    ? https.createServer({ cert: TEST_KUBE_SERVER_CERT_PEM, key: TEST_KUBE_SERVER_KEY_PEM }, handler)
    : http.createServer(handler);
  // Go's net/http keeps idle connections far longer than Node's 5 s default; a short server
  // timeout would race client-side keep-alive reuse and add resets the real server never causes.
  server.keepAliveTimeout = 90_000;
  server.on('connection', (socket: Socket) => {
    if (away === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    const endpoint = `${socket.remoteAddress}:${socket.remotePort}`;
    tcpSockets.set(endpoint, socket);
    sockets.add(socket);
    socket.on('close', () => {
      tcpSockets.delete(endpoint);
      sockets.delete(socket);
    });
  });

  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  let bookmarkTimer: NodeJS.Timeout | undefined;
  const api: KubeApiServer = {
    url,
    port,
    ca: options.tls ? TEST_KUBE_CA_PEM : undefined,
    token,
    get requests() {
      return requests;
    },
    get openWatches() {
      return watchers.size;
    },
    get resourceVersion() {
      return String(rv);
    },

    upsertHost(input) {
      const name = input.metadata.name;
      if (typeof name !== 'string' || name === '') throw new Error('upsertHost: metadata.name is required');
      const namespace = input.metadata.namespace ?? 'default';
      const prev = hosts.get(`${namespace}/${name}`);
      const next = clone({
        apiVersion: BMH_API_VERSION,
        kind: BMH_KIND,
        ...withoutKeys(input, ['apiVersion', 'kind']),
      }) as BareMetalHost;
      const meta = withoutKeys(next.metadata, [
        'uid',
        'resourceVersion',
        'generation',
        'creationTimestamp',
        'deletionTimestamp',
        'deletionGracePeriodSeconds',
        'managedFields',
      ]);
      next.metadata = { ...meta, name, namespace };
      if (input.status === undefined && prev?.status !== undefined) next.status = clone(prev.status);
      if (prev === undefined) {
        next.metadata.uid = randomUUID();
        next.metadata.creationTimestamp = formatTime(now());
        next.metadata.generation = 1;
        return commit('ADDED', next, undefined);
      }
      const bodyOf = (h: BareMetalHost): string =>
        canonical(withoutKeys(h, ['apiVersion', 'kind', 'metadata', 'status']));
      next.metadata.uid = prev.metadata.uid;
      next.metadata.creationTimestamp = prev.metadata.creationTimestamp;
      next.metadata.generation = (prev.metadata.generation ?? 1) + (bodyOf(next) === bodyOf(prev) ? 0 : 1);
      if (prev.metadata.deletionTimestamp !== undefined) {
        next.metadata.deletionTimestamp = prev.metadata.deletionTimestamp;
        next.metadata.deletionGracePeriodSeconds = prev.metadata.deletionGracePeriodSeconds ?? 0;
      }
      next.metadata.resourceVersion = prev.metadata.resourceVersion;
      if (canonical(next) === canonical(prev)) return clone(prev);
      if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
        return commit('DELETED', next, prev);
      }
      return commit('MODIFIED', next, prev);
    },

    deleteHost(namespace, name) {
      const prev = hosts.get(`${namespace}/${name}`);
      if (prev === undefined) return undefined;
      if ((prev.metadata.finalizers ?? []).length === 0) return commit('DELETED', clone(prev), prev);
      if (prev.metadata.deletionTimestamp !== undefined) return clone(prev);
      const next = clone(prev);
      next.metadata.deletionTimestamp = formatTime(now());
      next.metadata.deletionGracePeriodSeconds = 0;
      next.metadata.generation = (prev.metadata.generation ?? 1) + 1;
      return commit('MODIFIED', next, prev);
    },

    setStatus(namespace, name, status) {
      const prev = hosts.get(`${namespace}/${name}`);
      if (prev === undefined) return undefined;
      if (canonical(prev.status) === canonical(status)) return clone(prev);
      const next = clone(prev);
      next.status = clone(status);
      return commit('MODIFIED', next, prev);
    },

    host(namespace, name) {
      const h = hosts.get(`${namespace}/${name}`);
      return h === undefined ? undefined : clone(h);
    },

    hosts(namespace) {
      return [...hosts.values()]
        .filter((h) => namespace === undefined || h.metadata.namespace === namespace)
        .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1))
        .map(clone);
    },

    sendBookmark() {
      for (const w of watchers) if (w.bookmarks) write(w, 'BOOKMARK', bookmarkObject());
    },

    sendWatchError(code = 500) {
      for (const w of [...watchers]) {
        write(w, 'ERROR', injectedStatus(code));
        endWatcher(w, 'end');
      }
    },

    compactHistory() {
      history.length = 0;
      baseRv = rv;
      evicted = false;
    },

    stallWatches() {
      for (const w of watchers) {
        w.stalled = true;
        if (w.timer !== undefined) clearTimeout(w.timer);
      }
      return watchers.size;
    },

    dropWatchConnections(mode = 'reset') {
      const open = [...watchers];
      for (const w of open) endWatcher(w, mode);
      return open.length;
    },

    failNext(n, status = 500, match) {
      failRules.push({ remaining: n, status, match });
    },

    async pauseAvailability(mode = 'refuse') {
      away = mode;
      for (const w of [...watchers]) endWatcher(w, 'reset');
      if (mode === 'refuse') {
        const closedPromise = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        await closedPromise;
      } else if (mode === 'reset') {
        for (const s of sockets) s.resetAndDestroy();
      }
      notify();
    },

    async resume() {
      const wasRefusing = away === 'refuse';
      away = undefined;
      if (wasRefusing && !closed) await listen(port);
      notify();
    },

    events(namespace) {
      return [...storedEvents.values()]
        .filter((e) => namespace === undefined || e.metadata.namespace === namespace)
        .map((e) => servedEvent(e, false) as CoreEvent);
    },

    lease(namespace, name) {
      const l = storedLeases.get(eventKey(namespace, name));
      return l === undefined ? undefined : clone(l);
    },

    waitFor(condition, timeoutMs = 5000, what = 'condition') {
      if (condition()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (condition()) finish(undefined);
        };
        const poll = setInterval(check, 25);
        const timer = setTimeout(
          () => finish(new Error(`kube-apiserver fixture: timed out after ${timeoutMs} ms waiting for ${what}`)),
          timeoutMs,
        );
        const finish = (err: Error | undefined): void => {
          clearInterval(poll);
          clearTimeout(timer);
          listeners.delete(check);
          if (err === undefined) resolve();
          else reject(err);
        };
        listeners.add(check);
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      if (bookmarkTimer !== undefined) clearInterval(bookmarkTimer);
      for (const w of [...watchers]) endWatcher(w, 'reset');
      if (!server.listening) return;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await done;
    },
  };

  for (const h of options.hosts ?? []) api.upsertHost(h);
  if (options.bookmarkIntervalMs !== undefined) {
    bookmarkTimer = setInterval(() => api.sendBookmark(), options.bookmarkIntervalMs);
    bookmarkTimer.unref();
  }
  return api;
}
