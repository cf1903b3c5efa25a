// Proves the fixture's Secrets, ConfigMaps and Leases (test/support/kube-apiserver.ts over
// kube-objects.ts) against the real @kubernetes/client-node 1.x calls the product makes:
// CoreV1Api read/create/replace/delete/list for Secrets and ConfigMaps, CoordinationV1Api for
// Leases, and Watch.watch on each collection. Status bodies and messages are the real server's.

import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1ConfigMap,
  type V1Lease,
  V1MicroTime,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';

import {
  HttpFailure,
  type KubeApiServer,
  type KubeApiServerOptions,
  MAX_DATA_BYTES,
  startKubeApiServer,
} from '../support/kube-apiserver.js';
import { kubeconfigFor } from '../support/kube-config.js';
import { summary, watchOnce as watchWith } from '../support/kube-watch.js';

const NS = 'metalboot';
const TOKEN = 'test-token';
const SECRETS_PATH = `/api/v1/namespaces/${NS}/secrets`;
const CONFIG_MAPS_PATH = `/api/v1/namespaces/${NS}/configmaps`;
const LEASES_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined): string => Buffer.from(text ?? '', 'base64').toString('utf8');

let server: KubeApiServer | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
/** A watch whose abort is one of this file's cleanups. */
const watchOnce = (kc: KubeConfig, path: string, query: Record<string, string | number | boolean>) =>
  watchWith(kc, path, query, cleanups);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await server?.close();
  server = undefined;
});

async function start(options: KubeApiServerOptions = {}) {
  const s = await startKubeApiServer({ token: TOKEN, ...options });
  server = s;
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(s));
  return { s, kc, core: kc.makeApiClient(CoreV1Api), coordination: kc.makeApiClient(CoordinationV1Api) };
}

/** The ApiException a call rejects with; its body is the raw Status JSON, parsed here. */
async function failure(p: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiException);
  const api = err as ApiException<unknown>;
  const body = typeof api.body === 'string' ? (JSON.parse(api.body) as Record<string, unknown>) : api.body;
  return { code: api.code, status: body as Record<string, unknown> };
}

function secret(name: string, extra: Partial<V1Secret> = {}): V1Secret {
  return { metadata: { name, labels: { app: 'metalboot' } }, data: { token: b64('s3cret') }, ...extra };
}

describe('secrets (CoreV1Api)', () => {
  it('creates (201), reads, lists by label and deletes (a success Status) with the real shapes', async () => {
    const { s, core } = await start();
    const created = await core.createNamespacedSecret({ namespace: NS, body: secret('db') });
    expect(s.requests.at(-1)).toMatchObject({ method: 'POST', status: 201 });
    expect(created).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: NS, resourceVersion: s.resourceVersion },
      // type defaults to Opaque.
      type: 'Opaque',
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.generation).toBeUndefined();
    await core.createNamespacedSecret({ namespace: NS, body: secret('other', { metadata: { name: 'other' } }) });

    const read = await core.readNamespacedSecret({ namespace: NS, name: 'db' });
    expect(unb64(read.data?.['token'])).toBe('s3cret');

    const list = await core.listNamespacedSecret({ namespace: NS, labelSelector: 'app=metalboot' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['db']);
    expect(list.metadata?.resourceVersion).toBe(s.resourceVersion);
    const byType = await core.listNamespacedSecret({ namespace: NS, fieldSelector: 'type=Opaque,metadata.name!=db' });
    expect(byType.items.map((i) => i.metadata?.name)).toEqual(['other']);

    const deleted = await core.deleteNamespacedSecret({ namespace: NS, name: 'db' });
    expect(deleted).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 'db', kind: 'secrets', uid: created.metadata?.uid },
    });
    const gone = await failure(core.readNamespacedSecret({ namespace: NS, name: 'db' }));
    expect(gone).toMatchObject({ code: 404, status: { reason: 'NotFound', message: 'secrets "db" not found' } });
    expect(s.secret(NS, 'db')).toBeUndefined();
  });

  it('refuses a second create with 409 AlreadyExists', async () => {
    const { core } = await start();
    await core.createNamespacedSecret({ namespace: NS, body: secret('db') });
    const dup = await failure(core.createNamespacedSecret({ namespace: NS, body: secret('db') }));
    expect(dup).toEqual({
      code: 409,
      status: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'secrets "db" already exists',
        reason: 'AlreadyExists',
        details: { name: 'db', kind: 'secrets' },
        code: 409,
      },
    });
  });

  it('merges stringData into data (stringData wins) and never stores or returns it', async () => {
    const { s, core } = await start();
    const body = secret('db', {
      data: { a: b64('from data'), b: b64('kept') },
      stringData: { a: 'from stringData', c: 'new' },
    });
    const created = await core.createNamespacedSecret({ namespace: NS, body });
    const decoded = (data: Record<string, string> | undefined) =>
      Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, unb64(v)]));
    expect(decoded(created.data)).toEqual({ a: 'from stringData', b: 'kept', c: 'new' });
    expect(created.stringData).toBeUndefined();
    expect(s.secret(NS, 'db')).not.toHaveProperty('stringData');

    const replaced = await core.replaceNamespacedSecret({
      namespace: NS,
      name: 'db',
      body: { metadata: { name: 'db' }, stringData: { only: 'this' } },
    });
    // A PUT replaces: keys not sent are gone.
    expect(decoded(replaced.data)).toEqual({ only: 'this' });
    expect((await core.readNamespacedSecret({ namespace: NS, name: 'db' })).stringData).toBeUndefined();
  });

  it('takes metadata.resourceVersion on PUT as a precondition; without one the PUT is unconditional', async () => {
    const { s, core } = await start();
    const v1 = await core.createNamespacedSecret({ namespace: NS, body: secret('db') });
    const v2 = await core.replaceNamespacedSecret({
      namespace: NS,
      name: 'db',
      body: { ...v1, data: { token: b64('rotated') } },
    });
    expect(Number(v2.metadata?.resourceVersion)).toBeGreaterThan(Number(v1.metadata?.resourceVersion));

    const stale = await failure(
      core.replaceNamespacedSecret({ namespace: NS, name: 'db', body: { ...v1, data: { token: b64('lost') } } }),
    );
    expect(stale).toMatchObject({
      code: 409,
      status: {
        reason: 'Conflict',
        message:
          'Operation cannot be fulfilled on secrets "db": the object has been modified; please apply your changes to the latest version and try again',
        details: { name: 'db', kind: 'secrets' },
      },
    });
    expect(unb64(s.secret(NS, 'db')?.data?.['token'])).toBe('rotated');

    // The same content again: a no-op, the resourceVersion (global and the object's) stays.
    const before = s.resourceVersion;
    const same = await core.replaceNamespacedSecret({ namespace: NS, name: 'db', body: { ...v2 } });
    expect(same.metadata?.resourceVersion).toBe(v2.metadata?.resourceVersion);
    expect(s.resourceVersion).toBe(before);

    const unconditional = await core.replaceNamespacedSecret({
      namespace: NS,
      name: 'db',
      body: { metadata: { name: 'db' }, data: { token: b64('forced') } },
    });
    expect(unb64(unconditional.data?.['token'])).toBe('forced');
    expect(unconditional.metadata?.uid).toBe(v1.metadata?.uid);

    const missing = await failure(
      core.replaceNamespacedSecret({ namespace: NS, name: 'nope', body: { metadata: { name: 'nope' } } }),
    );
    expect(missing).toMatchObject({ code: 404, status: { message: 'secrets "nope" not found' } });
  });

  it('takes a metadata.uid on PUT as a storage precondition: 409, even before a 404', async () => {
    const { core } = await start();
    const v1 = await core.createNamespacedSecret({ namespace: NS, body: secret('db') });
    const storageError = (name: string, stored: string) =>
      `Operation cannot be fulfilled on secrets "${name}": StorageError: invalid object, Code: 4, Key: /registry/secrets/${NS}/${name}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: ${stored}`;
    const recreated = await failure(
      core.replaceNamespacedSecret({
        namespace: NS,
        name: 'db',
        body: { ...v1, metadata: { name: 'db', uid: 'not-the-uid' } },
      }),
    );
    expect(recreated).toMatchObject({
      code: 409,
      status: { reason: 'Conflict', message: storageError('db', v1.metadata?.uid ?? '') },
    });
    const gone = await failure(
      core.replaceNamespacedSecret({
        namespace: NS,
        name: 'gone',
        body: { metadata: { name: 'gone', uid: 'not-the-uid' } },
      }),
    );
    expect(gone).toMatchObject({ code: 409, status: { message: storageError('gone', '') } });
  });

  it('refuses a DELETE whose preconditions do not match, as rest.BeforeDelete words it', async () => {
    const { s, core } = await start();
    const v1 = await core.createNamespacedSecret({ namespace: NS, body: secret('db') });
    const v2 = await core.replaceNamespacedSecret({
      namespace: NS,
      name: 'db',
      body: { ...v1, type: 'Opaque', data: {} },
    });
    const staleRv = v1.metadata?.resourceVersion ?? '';
    const currentRv = v2.metadata?.resourceVersion ?? '';

    const stale = await failure(
      core.deleteNamespacedSecret({ namespace: NS, name: 'db', body: { preconditions: { resourceVersion: staleRv } } }),
    );
    expect(stale).toMatchObject({
      code: 409,
      status: {
        reason: 'Conflict',
        message: `Operation cannot be fulfilled on Secret "db": the ResourceVersion in the precondition (${staleRv}) does not match the ResourceVersion in record (${currentRv}). The object might have been modified`,
        details: { name: 'db', kind: 'Secret' },
      },
    });
    const otherUid = await failure(
      core.deleteNamespacedSecret({ namespace: NS, name: 'db', body: { preconditions: { uid: 'not-the-uid' } } }),
    );
    expect(otherUid.status['message']).toBe(
      `Operation cannot be fulfilled on Secret "db": the UID in the precondition (not-the-uid) does not match the UID in record (${v1.metadata?.uid}). The object might have been deleted and then recreated`,
    );
    expect(s.secret(NS, 'db')).toBeDefined();

    await core.deleteNamespacedSecret({
      namespace: NS,
      name: 'db',
      body: { preconditions: { resourceVersion: currentRv, uid: v1.metadata?.uid ?? '' } },
    });
    expect(s.secret(NS, 'db')).toBeUndefined();
  });

  const LONG = 'a'.repeat(254);
  it.each([
    {
      what: 'a name that is not a DNS subdomain',
      body: secret('DB'),
      name: 'DB',
      message:
        "Secret \"DB\" is invalid: metadata.name: Invalid value: \"DB\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      causes: [{ reason: 'FieldValueInvalid', field: 'metadata.name' }],
    },
    {
      what: 'a name longer than 253 characters',
      body: secret(LONG),
      name: LONG,
      message: `Secret "${LONG}" is invalid: metadata.name: Invalid value: "${LONG}": must be no more than 253 characters`,
      causes: [{ reason: 'FieldValueInvalid', field: 'metadata.name' }],
    },
    {
      what: 'a data key outside [-._a-zA-Z0-9]',
      body: secret('db', { data: { 'bad key': b64('x') } }),
      name: 'db',
      message:
        "Secret \"db\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
      causes: [{ reason: 'FieldValueInvalid', field: 'data[bad key]' }],
    },
    {
      what: 'more than 1 MiB of data',
      body: secret('db', { data: { a: b64('x'.repeat(MAX_DATA_BYTES)), b: b64('y') } }),
      name: 'db',
      message: 'Secret "db" is invalid: data: Too long: must have at most 1048576 bytes',
      causes: [{ reason: 'FieldValueTooLong', field: 'data' }],
    },
    {
      what: 'a label value with colons',
      body: secret('db', { metadata: { name: 'db', labels: { mac: '52:54:00:00:00:01' } } }),
      name: 'db',
      message:
        "Secret \"db\" is invalid: metadata.labels: Invalid value: \"52:54:00:00:00:01\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
      causes: [{ reason: 'FieldValueInvalid', field: 'metadata.labels' }],
    },
  ])('refuses $what on create with 422 Invalid', async ({ body, name, message, causes }) => {
    const { s, core } = await start();
    const invalid = await failure(core.createNamespacedSecret({ namespace: NS, body }));
    expect(invalid).toMatchObject({
      code: 422,
      status: { reason: 'Invalid', message, details: { name, kind: 'Secret', causes } },
    });
    expect(s.secrets()).toEqual([]);
  });

  it('accepts exactly 1 MiB of data', async () => {
    const { s, core } = await start();
    await core.createNamespacedSecret({
      namespace: NS,
      body: secret('db', { data: { a: b64('x'.repeat(MAX_DATA_BYTES)) } }),
    });
    expect(Buffer.from(s.secret(NS, 'db')?.data?.['a'] ?? '', 'base64')).toHaveLength(MAX_DATA_BYTES);
  });

  it.each([
    { value: 'admin', offset: 4 },
    { value: 'My-pass-123', offset: 2 },
    { value: 'YWJj=', offset: 4 },
    { value: 'YQ', offset: 0 },
  ])('refuses data value $value (not base64) with the decoder’s 400 at byte $offset', async ({ value, offset }) => {
    const { core } = await start();
    const bad = await failure(
      core.createNamespacedSecret({ namespace: NS, body: secret('db', { data: { k: value } }) }),
    );
    expect(bad).toMatchObject({
      code: 400,
      status: {
        reason: 'BadRequest',
        message: `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${offset}`,
      },
    });
  });

  it('keeps type immutable and enforces immutable: true on update (422)', async () => {
    const { s, core } = await start();
    const tls = await core.createNamespacedSecret({
      namespace: NS,
      body: secret('tls', { type: 'kubernetes.io/tls', data: { 'tls.crt': b64('c'), 'tls.key': b64('k') } }),
    });
    // Without a type the update defaults it to Opaque: a change of type.
    const retyped = await failure(
      core.replaceNamespacedSecret({ namespace: NS, name: 'tls', body: { metadata: { name: 'tls' }, data: tls.data } }),
    );
    expect(retyped).toMatchObject({
      code: 422,
      status: { message: 'Secret "tls" is invalid: type: Invalid value: "Opaque": field is immutable' },
    });

    const frozen = await core.createNamespacedSecret({ namespace: NS, body: secret('frozen', { immutable: true }) });
    const changed = await failure(
      core.replaceNamespacedSecret({
        namespace: NS,
        name: 'frozen',
        body: { ...frozen, data: { token: b64('new') } },
      }),
    );
    expect(changed).toMatchObject({
      code: 422,
      status: {
        message: 'Secret "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set',
        details: { causes: [{ reason: 'FieldValueForbidden', field: 'data' }] },
      },
    });
    const thawed = await failure(
      core.replaceNamespacedSecret({ namespace: NS, name: 'frozen', body: { ...frozen, immutable: false } }),
    );
    expect(thawed.status['message']).toBe(
      'Secret "frozen" is invalid: immutable: Forbidden: field is immutable when `immutable` is set',
    );
    // Metadata may still change.
    const relabelled = await core.replaceNamespacedSecret({
      namespace: NS,
      name: 'frozen',
      body: { ...frozen, metadata: { ...frozen.metadata, labels: { app: 'other' } } },
    });
    expect(relabelled.metadata?.labels).toEqual({ app: 'other' });
    expect(unb64(s.secret(NS, 'frozen')?.data?.['token'])).toBe('s3cret');
  });
});

describe('configmaps (CoreV1Api)', () => {
  it('creates, replaces with a precondition, lists by label and deletes', async () => {
    const { s, core } = await start();
    const created = await core.createNamespacedConfigMap({
      namespace: NS,
      body: {
        metadata: { name: 'state', labels: { app: 'metalboot' } },
        data: { 'leases.json': '{}' },
        binaryData: { blob: b64('\u0000\u0001') },
      },
    });
    expect(created).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1', data: { 'leases.json': '{}' } });
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'unlabelled' } } });
    const list = await core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'app in (metalboot)' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['state']);
    expect(list.items[0]).not.toHaveProperty('kind');

    const updated = await core.replaceNamespacedConfigMap({
      namespace: NS,
      name: 'state',
      body: { ...created, data: { 'leases.json': '{"a":1}' } },
    });
    const stale = await failure(
      core.replaceNamespacedConfigMap({ namespace: NS, name: 'state', body: { ...created, data: {} } }),
    );
    expect(stale).toMatchObject({ code: 409, status: { reason: 'Conflict', details: { kind: 'configmaps' } } });
    expect(s.configMap(NS, 'state')?.data).toEqual({ 'leases.json': '{"a":1}' });

    const wrongRv = await failure(
      core.deleteNamespacedConfigMap({
        namespace: NS,
        name: 'state',
        body: { preconditions: { resourceVersion: created.metadata?.resourceVersion ?? '' } },
      }),
    );
    expect(wrongRv).toMatchObject({ code: 409, status: { details: { kind: 'ConfigMap' } } });
    const deleted = await core.deleteNamespacedConfigMap({
      namespace: NS,
      name: 'state',
      body: { preconditions: { resourceVersion: updated.metadata?.resourceVersion ?? '' } },
    });
    expect(deleted).toMatchObject({ status: 'Success', details: { name: 'state', kind: 'configmaps' } });
    expect(s.configMaps(NS).map((c) => c.metadata.name)).toEqual(['unlabelled']);
  });

  const invalidConfigMaps: { what: string; body: V1ConfigMap; message: string }[] = [
    {
      what: 'a key in both data and binaryData',
      body: { metadata: { name: 'cm' }, data: { k: 'v' }, binaryData: { k: b64('v') } },
      message:
        'ConfigMap "cm" is invalid: [data[k]: Invalid value: "k": duplicate of key present in binaryData, binaryData[k]: Invalid value: "k": duplicate of key present in data]',
    },
    {
      what: 'more than 1 MiB in data and binaryData together',
      body: { metadata: { name: 'cm' }, data: { a: 'x'.repeat(MAX_DATA_BYTES) }, binaryData: { b: b64('y') } },
      message: 'ConfigMap "cm" is invalid: []: Too long: must have at most 1048576 bytes',
    },
    {
      what: 'a key starting with ..',
      body: { metadata: { name: 'cm' }, data: { '..data': 'v' } },
      message: 'ConfigMap "cm" is invalid: data[..data]: Invalid value: "..data": must not start with \'..\'',
    },
  ];
  it.each(invalidConfigMaps)('refuses $what with 422 Invalid', async ({ body, message }) => {
    const { core } = await start();
    const invalid = await failure(core.createNamespacedConfigMap({ namespace: NS, body }));
    expect(invalid).toMatchObject({ code: 422, status: { reason: 'Invalid', message } });
  });

  it('refuses to change the data of an immutable ConfigMap', async () => {
    const { core } = await start();
    const cm = await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'cm' }, data: { k: 'v' }, immutable: true },
    });
    const changed = await failure(
      core.replaceNamespacedConfigMap({ namespace: NS, name: 'cm', body: { ...cm, data: { k: 'w' } } }),
    );
    expect(changed).toMatchObject({
      code: 422,
      status: { message: 'ConfigMap "cm" is invalid: data: Forbidden: field is immutable when `immutable` is set' },
    });
  });
});

describe('leases (CoordinationV1Api): selectors, preconditions, create on update', () => {
  const lease = (name: string, labels: Record<string, string>, holder = 'a'): V1Lease => ({
    metadata: { name, labels },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      renewTime: new V1MicroTime(Date.UTC(2026, 0, 1)),
      leaseTransitions: 0,
    },
  });

  it('lists by label selector, and answers an unsupported field selector with 400', async () => {
    const { coordination } = await start();
    await coordination.createNamespacedLease({ namespace: NS, body: lease('m-1', { 'metalboot.io/shard': '1' }) });
    await coordination.createNamespacedLease({ namespace: NS, body: lease('m-2', { 'metalboot.io/shard': '2' }) });
    await coordination.createNamespacedLease({ namespace: NS, body: lease('other', {}) });
    const shards = await coordination.listNamespacedLease({ namespace: NS, labelSelector: 'metalboot.io/shard' });
    expect(shards.items.map((l) => l.metadata?.name)).toEqual(['m-1', 'm-2']);
    const one = await coordination.listNamespacedLease({ namespace: NS, labelSelector: 'metalboot.io/shard=2' });
    expect(one.items.map((l) => l.metadata?.name)).toEqual(['m-2']);
    const named = await coordination.listNamespacedLease({ namespace: NS, fieldSelector: 'metadata.name=other' });
    expect(named.items.map((l) => l.metadata?.name)).toEqual(['other']);
    const bad = await failure(
      coordination.listNamespacedLease({ namespace: NS, fieldSelector: 'spec.holderIdentity=a' }),
    );
    expect(bad).toMatchObject({
      code: 400,
      status: {
        message: '"spec.holderIdentity" is not a known field selector: only "metadata.name", "metadata.namespace"',
      },
    });
  });

  it('deletes only when preconditions.resourceVersion matches', async () => {
    const { s, coordination } = await start();
    const v1 = await coordination.createNamespacedLease({ namespace: NS, body: lease('m', {}) });
    const v2 = await coordination.replaceNamespacedLease({
      namespace: NS,
      name: 'm',
      body: { ...v1, spec: { ...v1.spec, holderIdentity: 'b' } },
    });
    const stale = await failure(
      coordination.deleteNamespacedLease({
        namespace: NS,
        name: 'm',
        body: { preconditions: { resourceVersion: v1.metadata?.resourceVersion ?? '' } },
      }),
    );
    expect(stale).toMatchObject({
      code: 409,
      status: {
        reason: 'Conflict',
        message: `Operation cannot be fulfilled on Lease.coordination.k8s.io "m": the ResourceVersion in the precondition (${v1.metadata?.resourceVersion}) does not match the ResourceVersion in record (${v2.metadata?.resourceVersion}). The object might have been modified`,
        details: { name: 'm', group: 'coordination.k8s.io', kind: 'Lease' },
      },
    });
    expect(s.lease(NS, 'm')?.spec['holderIdentity']).toBe('b');
    const deleted = await coordination.deleteNamespacedLease({
      namespace: NS,
      name: 'm',
      body: { preconditions: { resourceVersion: v2.metadata?.resourceVersion ?? '' } },
    });
    expect(deleted).toMatchObject({
      status: 'Success',
      details: { name: 'm', group: 'coordination.k8s.io', kind: 'leases', uid: v1.metadata?.uid },
    });
    expect(s.leases(NS)).toEqual([]);
  });

  it('refuses an update without resourceVersion (422) and creates on a PUT of a missing lease (201)', async () => {
    const { s, coordination } = await start();
    const created = await coordination.replaceNamespacedLease({ namespace: NS, name: 'm', body: lease('m', {}) });
    expect(s.requests.at(-1)).toMatchObject({ method: 'PUT', status: 201 });
    expect(created.metadata?.uid).toBeTruthy();
    const unconditional = await failure(
      coordination.replaceNamespacedLease({ namespace: NS, name: 'm', body: lease('m', {}, 'b') }),
    );
    expect(unconditional).toMatchObject({
      code: 422,
      status: {
        message:
          'leases.coordination.k8s.io "m" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
        details: { kind: 'leases', group: 'coordination.k8s.io' },
      },
    });
    const invalid = await failure(
      coordination.createNamespacedLease({
        namespace: NS,
        body: { metadata: { name: 'n' }, spec: { leaseDurationSeconds: 0 } },
      }),
    );
    expect(invalid.status['message']).toBe(
      'Lease.coordination.k8s.io "n" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
    );
  });

  it('watches by label selector: objects entering and leaving it arrive as ADDED and DELETED', async () => {
    const { s, kc, coordination } = await start();
    const w = watchOnce(kc, LEASES_PATH, { labelSelector: 'metalboot.io/role=leader', allowWatchBookmarks: true });
    await s.waitFor(() => s.openWatches === 1);
    const l = await coordination.createNamespacedLease({
      namespace: NS,
      body: lease('m', { 'metalboot.io/role': 'idle' }),
    });
    const promoted = await coordination.replaceNamespacedLease({
      namespace: NS,
      name: 'm',
      body: { ...l, metadata: { ...l.metadata, labels: { 'metalboot.io/role': 'leader' } } },
    });
    const renewed = await coordination.replaceNamespacedLease({
      namespace: NS,
      name: 'm',
      body: { ...promoted, spec: { ...promoted.spec, renewTime: new V1MicroTime(Date.UTC(2026, 0, 1, 0, 0, 5)) } },
    });
    await coordination.replaceNamespacedLease({
      namespace: NS,
      name: 'm',
      body: { ...renewed, metadata: { ...renewed.metadata, labels: {} } },
    });
    s.sendBookmark();
    await s.waitFor(() => w.events.length === 4);
    expect(summary(w.events)).toEqual(['ADDED m', 'MODIFIED m', 'DELETED m', 'BOOKMARK Lease']);
    // The BOOKMARK of a built-in kind is its Go zero value with the version set.
    expect(w.events[3]?.object).toEqual({
      kind: 'Lease',
      apiVersion: 'coordination.k8s.io/v1',
      metadata: { resourceVersion: s.resourceVersion, creationTimestamp: null },
      spec: {},
    });
  });
});

describe('watching secrets and configmaps (Watch.watch)', () => {
  it('replays one object’s changes after a resourceVersion (fieldSelector metadata.name)', async () => {
    const { s, kc, core } = await start();
    const a = await core.createNamespacedSecret({ namespace: NS, body: secret('a') });
    const b = await core.createNamespacedSecret({ namespace: NS, body: secret('b') });
    const from = s.resourceVersion;
    await core.replaceNamespacedSecret({ namespace: NS, name: 'a', body: { ...a, data: { token: b64('a2') } } });
    await core.replaceNamespacedSecret({ namespace: NS, name: 'b', body: { ...b, data: { token: b64('b2') } } });
    await core.deleteNamespacedSecret({ namespace: NS, name: 'a' });
    const deletedAt = s.resourceVersion;

    const w = watchOnce(kc, SECRETS_PATH, {
      fieldSelector: 'metadata.name=a',
      resourceVersion: from,
      allowWatchBookmarks: true,
    });
    await s.waitFor(() => w.events.length === 2);
    expect(summary(w.events)).toEqual(['MODIFIED a', 'DELETED a']);
    expect(w.events[0]?.object).toMatchObject({ kind: 'Secret', apiVersion: 'v1', data: { token: b64('a2') } });
    // DELETED carries the last state at the deletion's resourceVersion.
    expect(w.events[1]?.object.metadata?.resourceVersion).toBe(deletedAt);

    // Another actor's write arrives live.
    s.putSecret({ metadata: { name: 'a', namespace: NS }, stringData: { token: 'again' } });
    await s.waitFor(() => w.events.length === 3);
    expect(summary(w.events)).toEqual(['MODIFIED a', 'DELETED a', 'ADDED a']);
  });

  it('answers a too-old resourceVersion with one ERROR 410 Expired event, then the end', async () => {
    const { s, kc, core } = await start();
    await core.createNamespacedSecret({ namespace: NS, body: secret('a') });
    const old = s.resourceVersion;
    await core.createNamespacedSecret({ namespace: NS, body: secret('b') });
    s.compactHistory();
    const w = watchOnce(kc, SECRETS_PATH, { fieldSelector: 'metadata.name=a', resourceVersion: old });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${old} (${s.resourceVersion})`,
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
  });

  it('keeps a watch cache per kind: writes of one kind do not expire another kind’s history', async () => {
    const { s, kc, core } = await start({ historyLimit: 2 });
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cm' }, data: { k: '1' } } });
    const from = s.resourceVersion;
    await core.replaceNamespacedConfigMap({
      namespace: NS,
      name: 'cm',
      body: { metadata: { name: 'cm' }, data: { k: '2' } },
    });
    for (const name of ['a', 'b', 'c']) await core.createNamespacedSecret({ namespace: NS, body: secret(name) });
    const cm = watchOnce(kc, CONFIG_MAPS_PATH, { resourceVersion: from });
    await s.waitFor(() => cm.events.length === 1);
    expect(summary(cm.events)).toEqual(['MODIFIED cm']);
    // Three secret writes in a window of two: the first is gone.
    const secrets = watchOnce(kc, SECRETS_PATH, { resourceVersion: from });
    await secrets.done;
    expect(secrets.events[0]?.object).toMatchObject({ code: 410, reason: 'Expired' });
  });

  it('moves one global resourceVersion on every write of every kind, and not on a no-op', async () => {
    const { s, kc, core, coordination } = await start();
    const start0 = Number(s.resourceVersion);
    const w = watchOnce(kc, CONFIG_MAPS_PATH, { resourceVersion: s.resourceVersion, allowWatchBookmarks: true });
    await s.waitFor(() => s.openWatches === 1);
    const sec = await core.createNamespacedSecret({ namespace: NS, body: secret('a') });
    const cm = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cm' } } });
    const l = await coordination.createNamespacedLease({ namespace: NS, body: { metadata: { name: 'l' }, spec: {} } });
    expect([sec, cm, l].map((o) => Number(o.metadata?.resourceVersion))).toEqual([start0 + 1, start0 + 2, start0 + 3]);
    await core.replaceNamespacedConfigMap({ namespace: NS, name: 'cm', body: cm });
    expect(Number(s.resourceVersion)).toBe(start0 + 3);
    s.sendBookmark();
    await s.waitFor(() => w.events.length === 2);
    expect(summary(w.events)).toEqual(['ADDED cm', 'BOOKMARK ConfigMap']);
    expect(w.events[1]?.object).toEqual({
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: { resourceVersion: String(start0 + 3), creationTimestamp: null },
    });
  });

  it('serves watch-list on secrets and the named-object watch path', async () => {
    const { s, kc, core } = await start();
    await core.createNamespacedSecret({ namespace: NS, body: secret('a') });
    await core.createNamespacedSecret({ namespace: NS, body: secret('b') });
    const list = watchOnce(kc, SECRETS_PATH, {
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
      allowWatchBookmarks: true,
    });
    await s.waitFor(() => list.events.length === 3);
    expect(summary(list.events)).toEqual(['ADDED a', 'ADDED b', 'BOOKMARK Secret']);
    const named = watchOnce(kc, `${SECRETS_PATH}/b`, { timeoutSeconds: 1 });
    expect(await named.done).toBeNull();
    expect(summary(named.events)).toEqual(['ADDED b']);
  });
});

describe('controls and faults on the new kinds', () => {
  it('requires the bearer token and honours failNext', async () => {
    const { s, core } = await start();
    s.putConfigMap({ metadata: { name: 'cm', namespace: NS }, data: { k: 'v' } });
    const wrong = new KubeConfig();
    wrong.loadFromString(kubeconfigFor(s, { token: 'wrong' }));
    const denied = await failure(wrong.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: NS, name: 'cm' }));
    expect(denied.code).toBe(401);
    s.failNext(1, 503, (r) => r.path.endsWith('/configmaps/cm'));
    expect((await failure(core.readNamespacedConfigMap({ namespace: NS, name: 'cm' }))).code).toBe(503);
    expect((await core.readNamespacedConfigMap({ namespace: NS, name: 'cm' })).data).toEqual({ k: 'v' });
  });

  it('writes as another client would: validated, stringData merged, preconditions honoured', async () => {
    const { s } = await start();
    const first = s.putSecret({ metadata: { name: 'a', namespace: NS }, stringData: { k: 'v' } });
    expect(first).toMatchObject({ type: 'Opaque', data: { k: b64('v') } });
    expect(first).not.toHaveProperty('stringData');
    const second = s.putSecret({ metadata: { name: 'a', namespace: NS }, stringData: { k: 'w' } });
    expect(Number(second.metadata.resourceVersion)).toBe(Number(first.metadata.resourceVersion) + 1);
    let thrown: unknown;
    try {
      s.putSecret({ metadata: { name: 'a', namespace: NS, resourceVersion: first.metadata.resourceVersion } });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(HttpFailure);
    expect((thrown as HttpFailure).status).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(() => s.putSecret({ metadata: { name: 'Bad' } })).toThrow(/is invalid: metadata.name/);
    // A Lease without resourceVersion: the control reads first, so the write goes through.
    s.putLease({ metadata: { name: 'l', namespace: NS }, spec: { holderIdentity: 'x' } });
    expect(s.putLease({ metadata: { name: 'l', namespace: NS }, spec: { holderIdentity: 'y' } }).spec).toEqual({
      holderIdentity: 'y',
    });
    expect(s.deleteSecret(NS, 'a')?.data).toEqual({ k: b64('w') });
    expect(s.secrets(NS)).toEqual([]);
  });
});
