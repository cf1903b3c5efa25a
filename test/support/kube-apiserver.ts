// An in-process Kubernetes API server for tests of code built on @kubernetes/client-node.
//
// It serves, over real HTTP (or HTTPS with the test CA in kube-tls.ts) on 127.0.0.1:
// - metal3.io/v1alpha1 baremetalhosts: get, list, watch (read-only: tests change hosts with
//   the controls);
// - core/v1 secrets and configmaps, coordination.k8s.io/v1 leases (namespaced): get, create
//   (POST), update (PUT), delete, list, watch;
// - core/v1 and events.k8s.io/v1 events: create, patch, update, get, list;
// and exposes test controls as methods: read objects, write them as another client would, emit
// bookmarks, compact the watch history, cut or stall watch connections, inject failures, go away.
// Storage, list and watch are one implementation for every kind (kube-objects.ts); each kind's
// decoding, defaulting and validation are in kube-kinds.ts and kube-validation.ts.
//
// Faithful to the real kube-apiserver (k8s.io/apiserver, v1.30-era behaviour):
// - One global, monotonically increasing resourceVersion shared by every object of every kind
//   (etcd's revision): writing a Secret, a Lease or an Event moves it too, so the versions of
//   one kind are not contiguous. Clients must treat it as opaque; the fixture starts at 1000 to
//   make that visible. A no-op write (nothing changed) keeps it and emits no watch event.
// - metadata.uid and creationTimestamp (RFC 3339 seconds) on every object; generation only on
//   BareMetalHosts (1 on create, +1 when anything but metadata/status changes, or when
//   deletionTimestamp is set), as built-in Secrets, ConfigMaps and Leases have none. A delete of
//   an object with finalizers sets deletionTimestamp (MODIFIED); removing the last finalizer
//   then deletes it (DELETED, carrying the last stored state).
// - Writes of secrets, configmaps and leases follow registry.Store and each kind's strategy:
//   POST → 201 with the stored object (generateName honoured); 409 AlreadyExists
//   `secrets "x" already exists`; 422 Invalid (one cause per field error, real messages) for a
//   name that is not a DNS subdomain of ≤ 253 characters, a bad label key or value, a bad
//   annotation key or more than 256 KiB of annotations; resourceVersion set → 500 (etcd3 store).
//   PUT: metadata.resourceVersion is a precondition (409 Conflict `Operation cannot be fulfilled
//   on secrets "x": the object has been modified; please apply your changes to the latest
//   version and try again`); without one the update is unconditional for secrets and
//   configmaps, while a Lease refuses it (422 `leases.coordination.k8s.io "x" is invalid:
//   metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`); a
//   metadata.uid that is not the stored one → 409 with the storage layer's `StorageError:
//   invalid object, Code: 4, Key: /registry/…, ResourceVersion: 0, AdditionalErrorMsg:
//   Precondition failed: UID in precondition: …`; a PUT of a missing Secret or ConfigMap → 404,
//   of a missing Lease creates it (201: the Lease strategy allows create-on-update); body name
//   ≠ URL name → 400. DELETE → 200 with a success Status `{status: "Success", details: {name,
//   kind: "secrets", uid}}` (these registries do not return the deleted object). DeleteOptions
//   (the body, or the query when there is no body) with preconditions.uid or
//   preconditions.resourceVersion that do not match → 409 Conflict as rest.BeforeDelete words
//   it, naming the Kind: `Operation cannot be fulfilled on Secret "x": the ResourceVersion in
//   the precondition (N) does not match the ResourceVersion in record (M). The object might
//   have been modified`; an unknown propagationPolicy → 422.
// - Secrets: data values are base64 ([]byte); one that is not → 400 `Secret in version "v1"
//   cannot be handled as a Secret: illegal base64 data at input byte N` (Go's decoder, offset
//   included: decoding fails before validation, so it is a 400, not a 422). stringData merges
//   into data (overriding) and is neither stored nor returned. type defaults to Opaque and is
//   immutable (422 `type: Invalid value: "…": field is immutable`). Data keys must match
//   [-._a-zA-Z0-9]+, be ≤ 253 characters and not be or start with `..` (422 `data[k]: Invalid
//   value: …`); more than 1 MiB of decoded data → 422 `data: Too long: must have at most
//   1048576 bytes`. immutable: true refuses later changes of data or of immutable (422
//   Forbidden `field is immutable when \`immutable\` is set`); metadata may still change.
// - ConfigMaps: data (strings) and binaryData (base64, 400 as above), the same key rules, a key
//   in both → 422, data + binaryData over 1 MiB → 422 `[]: Too long: must have at most 1048576
//   bytes`, immutable as for Secrets.
// - Leases: spec.acquireTime/renewTime must be MicroTime with exactly six fractional digits (400
//   otherwise, as the real decoder refuses toISOString()'s three); leaseDurationSeconds > 0 and
//   leaseTransitions ≥ 0 (422).
// - List (every kind): `{apiVersion, kind: "<Kind>List", metadata: {resourceVersion, continue?,
//   remainingItemCount?}, items}`, items sorted by namespace/name (etcd key order); items of
//   built-in kinds carry no apiVersion/kind, custom resources' do (they are unstructured).
//   resourceVersion semantics: unset → most recent, honours limit; "0" → any (served "from
//   cache": limit ignored); N + resourceVersionMatch=NotOlderThan (or unset) → most recent, at
//   least N; N + Exact → the state at exactly N, 410 "The resourceVersion for the provided list
//   is too old." if N is before the history window. N newer than the server waits up to 3 s,
//   then 504 "Too large resource version". limit/continue: continue tokens are the real format
//   (base64url `{"v":"meta.k8s.io/v1","rv":N,"start":"key\u0000"}`) and every page is served
//   from the first page's snapshot; an expired token gives 410. ListOptions are validated as
//   the server does (resourceVersionMatch without resourceVersion → 422, …). Label selectors;
//   field selectors on metadata.name and metadata.namespace, and type for secrets; any other
//   field → 400 with that kind's message (`field label not supported: x` for secrets,
//   `"x" is not a known field selector: only "metadata.name", "metadata.namespace"` for
//   configmaps and leases).
// - Watch (every kind, `?watch=true`): HTTP 200, chunked, one JSON event per line and per chunk,
//   `{type: ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object}`. No/zero resourceVersion →
//   synthetic ADDED for every current object, then changes. N → every change after N,
//   replayed from a bounded history (the watch cache: `historyLimit` events per kind, as each
//   resource has its own cache), then live. N older than the window → 200, one ERROR event
//   carrying Status 410 Expired "too old resource version: N (oldest)", then the stream ends —
//   exactly as the watch cache does (cacher.go newErrWatcher); N newer than the server → ERROR
//   504 after 3 s. DELETED carries the last state with the deletion's resourceVersion. With a
//   label or field selector, an object that stops matching arrives as DELETED and one that
//   starts matching as ADDED. BOOKMARK (only with allowWatchBookmarks=true) carries the
//   current global version and nothing else: `{kind, apiVersion, metadata: {resourceVersion}}`
//   for custom resources, the Go zero value for built-in kinds (`metadata: {resourceVersion,
//   creationTimestamp: null}`, and `spec: {}` for a Lease). sendInitialEvents=true
//   (watch-list) ends its initial ADDED events with a BOOKMARK annotated
//   "k8s.io/initial-events-end": "true". timeoutSeconds ends the stream cleanly.
//   `…/{plural}/{name}?watch=true` watches that one object, as fieldSelector=metadata.name=….
// - Errors are metav1.Status bodies with the real reasons and messages (kube-status.ts);
//   a bearer token, when configured, is required (401 Status otherwise); failNext and
//   pauseAvailability apply to every path.
// - Events: POST 201 with the stored object (uid, resourceVersion, creationTimestamp,
//   generateName honoured), 409 AlreadyExists, 422 with the legacy/strict validation of
//   pkg/apis/core/validation/events.go, namespace mismatch 400; PATCH with
//   application/json-patch+json (client-node's default), merge-patch+json and
//   strategic-merge-patch+json; PUT; metadata.resourceVersion as a precondition (409);
//   list with field selectors (involvedObject.name, reason, type, …). events.k8s.io/v1 is
//   served from the same store with the real field renames (regarding, note, …).
//
// Simplified (documented so nobody relies on it):
// - One history window per kind serves both watch replay and Exact/continue lists (the real
//   server answers those from etcd, whose compaction window is usually longer);
//   compactHistory() empties every kind's window at once.
// - The fixture never sends bookmarks on its own unless `bookmarkIntervalMs` is set; the
//   real server sends one about every minute and just before timeoutSeconds ends a watch.
//   Without timeoutSeconds a watch stays open until dropped (the real server ends it after
//   a random 30–60 min).
// - Baremetalhosts are read-only over HTTP (405 for writes: tests change them with the
//   controls); no status-subresource writes, no admission webhooks, no schema validation.
// - Secrets, ConfigMaps, Leases: no PATCH (405), no DeleteCollection (405), no server-side
//   apply, no dryRun, no managedFields, no Warning headers; unknown fields are dropped
//   silently; type-specific Secret rules (kubernetes.io/tls needs tls.crt, …), ownerReferences
//   and gracePeriodSeconds are ignored; a wrongly typed JSON field is a 400 worded like Go's
//   decoder but not to the letter. The namespace is checked as a DNS label, never for
//   existence.
// - Events: no watch, no DELETE, limit ignored on event lists, unknown fields kept, no
//   server-side apply (415), strategic merge patch applied as a JSON merge patch (exact for
//   Event, which has no merge keys). Namespaces are never checked for existence.
// - Label selectors: no `>`/`<` operators and no syntax validation of keys and values.
// - Only JSON (no protobuf, no Table); no RBAC (use failNext(n, 403) to simulate a denial);
//   /healthz, /livez, /readyz and /version answer without a token.
// - pauseAvailability('refuse') re-listens on the same port on resume(); a different process
//   could in theory take the port meanwhile.

import { randomUUID } from 'node:crypto';
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
import {
  BMH_SPEC,
  CONFIG_MAP_SPEC,
  CONFIG_MAP_STRATEGY,
  LEASE_SPEC,
  LEASE_STRATEGY,
  SECRET_SPEC,
  SECRET_STRATEGY,
  type StoredConfigMap,
  type StoredLease,
  type StoredSecret,
} from './kube-kinds.js';
import {
  canonical,
  createObjectStore,
  type DropMode,
  generateName,
  JSON_HEADERS,
  type KindSpec,
  type KindStrategy,
  type KubeObject,
  type ObjectMeta,
  parseBool,
  type Reply,
  withoutKeys,
} from './kube-objects.js';
import { applyJsonPatch, applyMergePatch, PATCH_CONTENT_TYPES } from './kube-patch.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './kube-selectors.js';
import {
  alreadyExistsStatus,
  badRequest,
  conflictStatus,
  HttpFailure,
  injectedStatus,
  invalidStatus,
  kubeStatus,
  notFoundStatus,
  unknownResourceStatus,
} from './kube-status.js';
import { TEST_KUBE_CA_PEM, TEST_KUBE_SERVER_CERT_PEM, TEST_KUBE_SERVER_KEY_PEM } from './kube-tls.js';

export type { CoreEvent } from './kube-events.js';
export {
  LEASE_API_VERSION,
  MAX_DATA_BYTES,
  type StoredConfigMap,
  type StoredLease,
  type StoredSecret,
} from './kube-kinds.js';
export type { DropMode, ObjectMeta, WatchEventType } from './kube-objects.js';
export { HttpFailure, type KubeStatus } from './kube-status.js';

export const BMH_GROUP = 'metal3.io';
export const BMH_VERSION = 'v1alpha1';
export const BMH_API_VERSION = 'metal3.io/v1alpha1';
export const BMH_PLURAL = 'baremetalhosts';
export const BMH_KIND = 'BareMetalHost';

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

/**
 * What tests pass to putSecret / putConfigMap / putLease: the object as a client would send it
 * (Secret data base64, stringData allowed); namespace defaults to "default".
 */
export interface ObjectInput {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

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
  /** Events each kind's watch cache keeps for replay (default 100). */
  readonly historyLimit?: number;
  /** Send BOOKMARK events to watches that asked for them at this interval (default: never). */
  readonly bookmarkIntervalMs?: number;
  /** How long a request for a resourceVersion newer than the server waits (default 3000, as the real one). */
  readonly tooLargeResourceVersionWaitMs?: number;
  readonly now?: () => Date;
  /**
   * The address to listen on (default 127.0.0.1): a test network namespace's own address when
   * processes in other namespaces of the same test must reach it.
   */
  readonly host?: string;
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
  /** Watch streams currently open (every kind). */
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

  /** A stored core/v1 Secret as served (data base64, no stringData); undefined if absent. */
  secret(namespace: string, name: string): StoredSecret | undefined;
  /** Stored Secrets sorted by namespace/name. */
  secrets(namespace?: string): StoredSecret[];
  configMap(namespace: string, name: string): StoredConfigMap | undefined;
  configMaps(namespace?: string): StoredConfigMap[];
  /** A stored coordination.k8s.io/v1 Lease, as served; undefined if absent. */
  lease(namespace: string, name: string): StoredLease | undefined;
  leases(namespace?: string): StoredLease[];
  /**
   * Write as another client would: POST if absent, else PUT, through the same decoding and
   * validation as over HTTP (stringData merges; what the server would refuse throws the
   * HttpFailure carrying its Status). metadata.resourceVersion, if given, is a precondition;
   * without it the update is unconditional (for a Lease too: the control reads first).
   */
  putSecret(input: ObjectInput): StoredSecret;
  putConfigMap(input: ObjectInput): StoredConfigMap;
  putLease(input: ObjectInput): StoredLease;
  /** Deletes as another client would (no preconditions); the last state, or undefined if absent. */
  deleteSecret(namespace: string, name: string): StoredSecret | undefined;
  deleteConfigMap(namespace: string, name: string): StoredConfigMap | undefined;
  deleteLease(namespace: string, name: string): StoredLease | undefined;

  /** A BOOKMARK at the current resourceVersion to every watch (any kind) that allowed bookmarks. */
  sendBookmark(): void;
  /** An ERROR event with this status on every open watch, which then ends (as the server does). */
  sendWatchError(code?: number): void;
  /** Forget every kind's watch history: the next watch or Exact list from an older version gets 410. */
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
  /** Resolves when `condition` holds, re-checked on every request, write and watch change. */
  waitFor(condition: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

type MutableRecord = { -readonly [K in keyof RequestRecord]: RequestRecord[K] };

const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** The kinds served read-write over HTTP, by path. */
const WRITABLE: readonly { readonly pattern: RegExp; readonly strategy: KindStrategy }[] = [
  { pattern: /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?secrets(?:\/([^/]+))?$/, strategy: SECRET_STRATEGY },
  { pattern: /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?configmaps(?:\/([^/]+))?$/, strategy: CONFIG_MAP_STRATEGY },
  {
    pattern: /^\/apis\/coordination\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?leases(?:\/([^/]+))?$/,
    strategy: LEASE_STRATEGY,
  },
];
const BMH_PATH = /^\/apis\/metal3\.io\/v1alpha1\/(?:namespaces\/([^/]+)\/)?baremetalhosts(?:\/([^/]+)(\/status)?)?$/;
const CORE_EVENTS = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/;
const V1_EVENTS = /^\/apis\/events\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/;

const WRITE_VERBS = ['create', 'delete', 'get', 'list', 'update', 'watch'];

const DISCOVERY: Record<string, unknown> = {
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      {
        name: 'configmaps',
        singularName: 'configmap',
        namespaced: true,
        kind: 'ConfigMap',
        verbs: WRITE_VERBS,
        shortNames: ['cm'],
      },
      {
        name: 'events',
        singularName: 'event',
        namespaced: true,
        kind: 'Event',
        verbs: ['create', 'get', 'list', 'patch', 'update'],
        shortNames: ['ev'],
      },
      { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: WRITE_VERBS },
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
    groupVersion: 'coordination.k8s.io/v1',
    resources: [{ name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease', verbs: WRITE_VERBS }],
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

const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

function methodNotAllowed(): HttpFailure {
  return new HttpFailure(
    kubeStatus(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed', {}),
  );
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES)
      throw new HttpFailure(kubeStatus(413, 'Request entity too large: limit is 3145728', 'RequestEntityTooLarge'));
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`error decoding request body: ${(err as Error).message}`);
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  return parseJson(await readBody(req));
}

/** A DELETE's body is optional: undefined when there is none. */
async function readOptionalJson(req: http.IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  return text.trim() === '' ? undefined : parseJson(text);
}

/** Starts the fixture on 127.0.0.1 with an ephemeral port. */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const now = options.now ?? (() => new Date());
  const token = options.token;

  const storedEvents = new Map<string, CoreEvent>();
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

  function resetSocket(socket: Socket): void {
    const tcp = tcpSockets.get(`${socket.remoteAddress}:${socket.remotePort}`) ?? socket;
    if (tcp.destroyed) socket.destroy();
    else tcp.resetAndDestroy();
  }

  const store = createObjectStore({
    initialResourceVersion: options.initialResourceVersion ?? 1000,
    historyLimit: options.historyLimit ?? 100,
    tooLargeResourceVersionWaitMs: options.tooLargeResourceVersionWaitMs ?? 3000,
    now,
    onChange: notify,
    resetSocket,
  });

  // ---------------------------------------------------------------- objects over HTTP

  async function handleObjects(
    spec: KindSpec,
    strategy: KindStrategy | undefined,
    ns: string | undefined,
    name: string | undefined,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    q: URLSearchParams,
    record: MutableRecord,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const started = (): void => {
      record.status = 200;
      notify();
    };
    if (name === undefined) {
      if (method === 'GET') {
        if (record.watch) return store.watch(spec, ns, q, req, res, started);
        return reply(res, record, await store.listReply(spec, ns, q));
      }
      if (method === 'POST' && ns !== undefined && strategy !== undefined)
        return reply(res, record, store.create(strategy, ns, await readJson(req)));
      throw methodNotAllowed();
    }
    if (ns === undefined) throw new HttpFailure(unknownResourceStatus());
    if (method === 'GET') {
      if (!record.watch) return reply(res, record, store.read(spec, ns, name));
      // A watch on a named object is a watch with fieldSelector=metadata.name (handlers/get.go).
      const wanted = `metadata.name=${name}`;
      const given = q.get('fieldSelector');
      if (given !== null && given !== '' && given !== wanted)
        throw badRequest(`fieldSelector ${given} doesn't match requested name ${name}`);
      q.set('fieldSelector', wanted);
      return store.watch(spec, ns, q, req, res, started);
    }
    if (strategy !== undefined && method === 'PUT')
      return reply(res, record, store.update(strategy, ns, name, await readJson(req)));
    if (strategy !== undefined && method === 'DELETE')
      return reply(res, record, store.delete(strategy, ns, name, await readOptionalJson(req), q));
    throw methodNotAllowed();
  }

  /** The control behind putSecret & co.: POST if absent, else PUT (read first when no precondition). */
  function putObject(strategy: KindStrategy, input: ObjectInput): KubeObject {
    const { spec } = strategy;
    const namespace = input.metadata.namespace ?? 'default';
    const name = input.metadata.name;
    const body = clone({ ...input, metadata: { ...input.metadata, namespace } });
    const existing = store.get(spec, namespace, name);
    if (existing === undefined) {
      delete body.metadata.resourceVersion;
      store.create(strategy, namespace, body);
    } else {
      body.metadata.resourceVersion ??= existing.metadata.resourceVersion;
      store.update(strategy, namespace, name, body);
    }
    const stored = store.get(spec, namespace, name);
    if (stored === undefined) throw new Error(`put${spec.kind}: ${namespace}/${name} was deleted by the write`);
    return stored;
  }

  // ---------------------------------------------------------------- events

  function eventKey(ns: string, name: string): string {
    return `${ns}/${name}`;
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
    meta.uid = randomUUID();
    meta.resourceVersion = String(store.bump());
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
    next.metadata.resourceVersion = String(store.bump());
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
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    if (labels.kind === 'error') throw badRequest(labels.message);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', v1 ? EVENTS_V1_FIELDS : CORE_EVENT_FIELDS);
    if (fields.kind === 'error') throw badRequest(fields.message);
    const items = [...storedEvents.values()]
      .filter(
        (e) =>
          (ns === undefined || e.metadata.namespace === ns) &&
          matchesLabels(labels.value, e.metadata.labels) &&
          matchesFields(fields.value, e, eventFieldValue),
      )
      .map((e) => {
        const served = servedEvent(e, v1) as Record<string, unknown>;
        // Typed (built-in) list items carry no apiVersion/kind on the wire.
        return withoutKeys(served, ['apiVersion', 'kind']);
      });
    return {
      kind: 'EventList',
      apiVersion: v1 ? 'events.k8s.io/v1' : 'v1',
      metadata: { resourceVersion: String(store.resourceVersion) },
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
    if (parseBool(q.get('watch'))) throw badRequest('watching events is not supported by this test fixture');
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

  // ---------------------------------------------------------------- HTTP plumbing

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

  function reply(res: http.ServerResponse, record: MutableRecord, out: Reply): void {
    send(res, record, out.code, out.body);
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

    for (const { pattern, strategy } of WRITABLE) {
      const m = pattern.exec(path);
      if (m !== null) return handleObjects(strategy.spec, strategy, dec(m[1]), dec(m[2]), req, res, q, record);
    }
    const bmh = BMH_PATH.exec(path);
    if (bmh !== null) {
      if (method !== 'GET') throw methodNotAllowed();
      return handleObjects(BMH_SPEC, undefined, dec(bmh[1]), dec(bmh[2]), req, res, q, record);
    }
    const core = CORE_EVENTS.exec(path);
    const v1 = core === null ? V1_EVENTS.exec(path) : null;
    const events = core ?? v1;
    if (events !== null) {
      if (events[1] === undefined && events[2] !== undefined) throw new HttpFailure(unknownResourceStatus());
      const out = await handleEvents(req, dec(events[1]), dec(events[2]), q, v1 !== null);
      return send(res, record, out.code, out.body);
    }
    const discovery = DISCOVERY[path];
    if (discovery !== undefined && method === 'GET') return send(res, record, 200, discovery);
    throw new HttpFailure(unknownResourceStatus());
  }

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
      watch: parseBool(url.searchParams.get('watch')),
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

  const host = options.host ?? '127.0.0.1';
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${port}`;

  let bookmarkTimer: NodeJS.Timeout | undefined;
  const asHost = (o: KubeObject | undefined): BareMetalHost | undefined => o as BareMetalHost | undefined;
  const api: KubeApiServer = {
    url,
    port,
    ca: options.tls ? TEST_KUBE_CA_PEM : undefined,
    token,
    get requests() {
      return requests;
    },
    get openWatches() {
      return store.openWatches;
    },
    get resourceVersion() {
      return String(store.resourceVersion);
    },

    upsertHost(input) {
      const name = input.metadata.name;
      if (typeof name !== 'string' || name === '') throw new Error('upsertHost: metadata.name is required');
      const namespace = input.metadata.namespace ?? 'default';
      const prev = store.get(BMH_SPEC, namespace, name);
      const next = clone({
        apiVersion: BMH_API_VERSION,
        kind: BMH_KIND,
        ...withoutKeys(input, ['apiVersion', 'kind']),
        metadata: { ...input.metadata, name, namespace },
      }) as KubeObject;
      // The status subresource is written separately: an upsert without status keeps it.
      if (input.status === undefined && prev?.['status'] !== undefined) next['status'] = clone(prev['status']);
      return store.save(BMH_SPEC, next) as BareMetalHost;
    },

    deleteHost(namespace, name) {
      return asHost(store.remove(BMH_SPEC, namespace, name));
    },

    setStatus(namespace, name, status) {
      const prev = store.get(BMH_SPEC, namespace, name);
      if (prev === undefined) return undefined;
      if (canonical(prev['status']) === canonical(status)) return prev as BareMetalHost;
      return store.save(BMH_SPEC, { ...prev, status: clone(status) }) as BareMetalHost;
    },

    host(namespace, name) {
      return asHost(store.get(BMH_SPEC, namespace, name));
    },

    hosts(namespace) {
      return store.list(BMH_SPEC, namespace) as BareMetalHost[];
    },

    secret(namespace, name) {
      return store.get(SECRET_SPEC, namespace, name) as StoredSecret | undefined;
    },
    secrets(namespace) {
      return store.list(SECRET_SPEC, namespace) as StoredSecret[];
    },
    configMap(namespace, name) {
      return store.get(CONFIG_MAP_SPEC, namespace, name) as StoredConfigMap | undefined;
    },
    configMaps(namespace) {
      return store.list(CONFIG_MAP_SPEC, namespace) as StoredConfigMap[];
    },
    lease(namespace, name) {
      return store.get(LEASE_SPEC, namespace, name) as StoredLease | undefined;
    },
    leases(namespace) {
      return store.list(LEASE_SPEC, namespace) as StoredLease[];
    },
    putSecret(input) {
      return putObject(SECRET_STRATEGY, input) as StoredSecret;
    },
    putConfigMap(input) {
      return putObject(CONFIG_MAP_STRATEGY, input) as StoredConfigMap;
    },
    putLease(input) {
      return putObject(LEASE_STRATEGY, input) as StoredLease;
    },
    deleteSecret(namespace, name) {
      return store.remove(SECRET_SPEC, namespace, name) as StoredSecret | undefined;
    },
    deleteConfigMap(namespace, name) {
      return store.remove(CONFIG_MAP_SPEC, namespace, name) as StoredConfigMap | undefined;
    },
    deleteLease(namespace, name) {
      return store.remove(LEASE_SPEC, namespace, name) as StoredLease | undefined;
    },

    sendBookmark() {
      store.sendBookmark();
    },

    sendWatchError(code = 500) {
      store.sendWatchError(code);
    },

    compactHistory() {
      store.compactHistory();
    },

    stallWatches() {
      return store.stallWatches();
    },

    dropWatchConnections(mode = 'reset') {
      return store.dropWatchConnections(mode);
    },

    failNext(n, status = 500, match) {
      failRules.push({ remaining: n, status, match });
    },

    async pauseAvailability(mode = 'refuse') {
      away = mode;
      store.dropWatchConnections('reset');
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
      store.dropWatchConnections('reset');
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
