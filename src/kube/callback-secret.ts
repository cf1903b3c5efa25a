/**
 * The callback listener's CA and serving certificate, shared by replicas through one Secret
 * (type kubernetes.io/tls: `tls.crt` leaf + CA, `tls.key`, `ca.crt`, `ca.key`).
 * - The leader creates it (seeded from proxy.stateDir's CA when one exists, so a single
 *   replica that grows into several keeps the CA Ironic already pins) and rotates it: the
 *   serving certificate when a third of its life is left or it no longer names the advertised
 *   host, the CA when it has less than 90 days left (Ironic then pins the new CA from the next
 *   heartbeat on). Writes carry the resourceVersion read, so two leaders cannot both rotate.
 * - Every replica follows the Secret (list + watch) and hands each version to the callback
 *   listener (SharedTlsFeed), which swaps its certificate without a restart.
 */
import { CoreV1Api, type KubeConfig, type V1Secret, type V1SecretList } from '@kubernetes/client-node';
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { MetalbootError } from '../base/errors.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { certificateCovers, type SharedTlsFeed, type SharedTlsMaterial } from '../proxy/callback-tls.js';
import {
  checkKeyPair,
  generateCa,
  issueServerCertificate,
  splitPemCertificates,
  type KeyedCertificate,
} from '../proxy/certificates.js';
import { httpStatusOf } from './api-errors.js';
import { ObjectFollower, type FollowedList } from './object-follower.js';

const DAY = 86_400_000;

/** The material a Secret holds; undefined when it is not a usable one (logged by the caller). Pure. */
export function materialOfSecret(s: V1Secret): SharedTlsMaterial | undefined {
  const d = s.data ?? {};
  const text = (k: string): string | undefined =>
    d[k] === undefined ? undefined : Buffer.from(d[k], 'base64').toString('utf8');
  const caCert = text('ca.crt');
  const caKey = text('ca.key');
  if (caCert === undefined || caKey === undefined) return undefined;
  try {
    checkKeyPair(caCert, caKey, 'ca.crt');
  } catch {
    return undefined;
  }
  const cert = text('tls.crt');
  const key = text('tls.key');
  let server: KeyedCertificate | undefined;
  if (cert !== undefined && key !== undefined) {
    try {
      checkKeyPair(cert, key, 'tls.crt');
      server = { certPem: cert, keyPem: key };
    } catch {
      server = undefined;
    }
  }
  return { ca: { certPem: caCert, keyPem: caKey }, server };
}

export function secretOfMaterial(
  namespace: string,
  name: string,
  m: { readonly ca: KeyedCertificate; readonly server: KeyedCertificate },
  resourceVersion: string | undefined,
): V1Secret {
  const b64 = (t: string) => Buffer.from(t, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'metalboot' },
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    data: {
      'tls.crt': b64(m.server.certPem),
      'tls.key': b64(m.server.keyPem),
      'ca.crt': b64(m.ca.certPem),
      'ca.key': b64(m.ca.keyPem),
    },
  };
}

export interface RotationPolicy {
  /** Renew the CA when it has less than this left. Default 90 days. */
  readonly caRenewBeforeMs: number;
  /** Renew the serving certificate when less than this fraction of its life is left. Default 1/3. */
  readonly serverRenewFraction: number;
}

const DEFAULT_POLICY: RotationPolicy = { caRenewBeforeMs: 90 * DAY, serverRenewFraction: 1 / 3 };

function validity(pem: string): { from: number; to: number } {
  const c = new X509Certificate(splitPemCertificates(pem)[0]!);
  return { from: new Date(c.validFrom).getTime(), to: new Date(c.validTo).getTime() };
}

/** What the leader must change in `m` (undefined: nothing). Pure. */
export function rotationNeeded(
  m: SharedTlsMaterial | undefined,
  hosts: readonly string[],
  now: number,
  policy: RotationPolicy = DEFAULT_POLICY,
): 'create' | 'ca-expiring' | 'server-missing' | 'server-hosts' | 'server-expiring' | undefined {
  if (m === undefined) return 'create';
  if (validity(m.ca.certPem).to - now < policy.caRenewBeforeMs) return 'ca-expiring';
  if (m.server === undefined) return 'server-missing';
  if (!certificateCovers(m.server.certPem, hosts, new Date(now))) return 'server-hosts';
  const v = validity(m.server.certPem);
  if (v.to - now < (v.to - v.from) * policy.serverRenewFraction) return 'server-expiring';
  return undefined;
}

export interface CallbackSecretOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** The advertised callback host(s) the leader's serving certificate names. */
  readonly hosts: readonly string[];
  readonly isLeader: () => boolean;
  readonly onLeadership: (fn: (leading: boolean) => void) => void;
  /** An existing CA to start from (proxy.stateDir's), when there is no Secret yet. */
  readonly seedCa?: () => Promise<KeyedCertificate | undefined>;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly policy?: RotationPolicy;
  /** How often the leader re-checks expiry. Default 1 h. */
  readonly checkIntervalMs?: number;
  /** How long the callback listener waits for the first Secret at start. Default 120 s. */
  readonly waitMs?: number;
}

export class CallbackSecret implements Service, SharedTlsFeed {
  readonly name = 'callback-secret';
  readonly where: string;
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: CallbackSecretOptions;
  readonly #log: Logger;
  readonly #api: CoreV1Api;
  readonly #follower: ObjectFollower<V1Secret>;
  readonly #subscribers: ((m: SharedTlsMaterial) => void)[] = [];
  /** The last usable material seen: what the listener serves, kept when the Secret goes bad. */
  #material: SharedTlsMaterial | undefined;
  /** What the Secret holds now: undefined when it is missing or unusable (the leader rewrites it). */
  #stored: SharedTlsMaterial | undefined;
  #resourceVersion: string | undefined;
  #waiters: ((m: SharedTlsMaterial) => void)[] = [];
  #reconciling: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: CallbackSecretOptions) {
    this.#o = o;
    this.where = `Secret ${o.namespace}/${o.name}`;
    this.#log = o.logger.child({ component: 'callback-secret', secret: `${o.namespace}/${o.name}` });
    this.#api = o.kubeConfig.makeApiClient(CoreV1Api);
    const fieldSelector = `metadata.name=${o.name}`;
    this.#follower = new ObjectFollower<V1Secret>({
      what: this.where,
      list: async (): Promise<FollowedList<V1Secret>> => {
        const l: V1SecretList = await this.#api.listNamespacedSecret({ namespace: o.namespace, fieldSelector });
        return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
      watchPath: `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/secrets`,
      watchQuery: { fieldSelector },
      kubeConfig: o.kubeConfig,
      sync: (items) => this.#take(items[0]),
      change: (type, s) => this.#take(type === 'DELETED' ? undefined : s),
      logger: this.#log,
    });
    this.readiness = [
      {
        name: 'callback-secret',
        check: () =>
          this.#material !== undefined
            ? { ok: true, detail: `callback certificate from ${this.where}` }
            : { ok: false, detail: `waiting for ${this.where} (the leader creates it)` },
      },
    ];
  }

  async start(): Promise<void> {
    this.#o.onLeadership((leading) => {
      if (leading) this.#reconcile();
    });
    this.#follower.start();
    const every = this.#o.checkIntervalMs ?? 3_600_000;
    this.#timer = setInterval(() => this.#reconcile(), every);
    this.#timer.unref();
    if (this.#o.isLeader()) this.#reconcile();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#follower.close();
    await this.#reconciling;
  }

  current(): Promise<SharedTlsMaterial> {
    if (this.#material !== undefined) return Promise.resolve(this.#material);
    const waitMs = this.#o.waitMs ?? 120_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        reject(
          new MetalbootError(
            'KUBE_ERR_CALLBACK_SECRET',
            `${this.where} did not appear within ${waitMs / 1000} s: no replica is leader, or the leader cannot write Secrets (check the Role)`,
          ),
        );
      }, waitMs);
      const done = (m: SharedTlsMaterial): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push(done);
    });
  }

  subscribe(fn: (m: SharedTlsMaterial) => void): void {
    this.#subscribers.push(fn);
  }

  #take(s: V1Secret | undefined): void {
    this.#resourceVersion = s?.metadata?.resourceVersion;
    const m = s === undefined ? undefined : materialOfSecret(s);
    this.#stored = m;
    if (s !== undefined && m === undefined)
      this.#log.error('the callback Secret holds no usable CA (ca.crt/ca.key); the leader replaces it');
    const changed =
      m !== undefined &&
      (this.#material === undefined ||
        m.ca.certPem !== this.#material.ca.certPem ||
        m.server?.certPem !== this.#material.server?.certPem);
    if (m !== undefined && changed) {
      const first = this.#material === undefined;
      this.#material = m;
      if (first) {
        for (const w of this.#waiters) w(m);
        this.#waiters = [];
      } else {
        for (const fn of this.#subscribers) fn(m);
      }
    }
    // Deleted, unusable or due: the leader puts it right.
    if (this.#o.isLeader()) this.#reconcile();
  }

  /** One reconciliation at a time; a request meanwhile runs once more after it. */
  #reconcile(): void {
    if (this.#closed) return;
    if (this.#reconciling !== undefined) {
      this.#again = true;
      return;
    }
    this.#reconciling = this.#reconcileOnce()
      .catch((err: unknown) => this.#log.error({ err }, 'could not update the callback Secret'))
      .finally(() => {
        this.#reconciling = undefined;
        if (this.#again) {
          this.#again = false;
          this.#reconcile();
        }
      });
  }

  async #reconcileOnce(): Promise<void> {
    if (!this.#o.isLeader() || !this.#follower.synced) return;
    const now = (this.#o.now ?? Date.now)();
    // Judged on what the Secret holds, not on what this replica last served: a Secret deleted
    // or overwritten is written again, with the CA in memory (the one Ironic pins).
    const reason = rotationNeeded(this.#stored, this.#o.hosts, now, this.#o.policy);
    if (reason === undefined) return;
    let ca = this.#stored?.ca ?? this.#material?.ca;
    if (ca === undefined) ca = await this.#o.seedCa?.();
    if (ca === undefined || reason === 'ca-expiring') ca = await generateCa(new Date(now));
    const server = await issueServerCertificate(ca, this.#o.hosts, new Date(now));
    const exists = this.#resourceVersion !== undefined;
    const body = secretOfMaterial(this.#o.namespace, this.#o.name, { ca, server }, this.#resourceVersion);
    try {
      if (exists) await this.#api.replaceNamespacedSecret({ namespace: this.#o.namespace, name: this.#o.name, body });
      else await this.#api.createNamespacedSecret({ namespace: this.#o.namespace, body });
      this.#log.info(
        { reason, caChanged: ca.certPem !== this.#material?.ca.certPem },
        exists ? 'callback Secret rotated' : 'callback Secret created',
      );
    } catch (err) {
      // Someone else wrote it first (another leader's last act, or a person): the watch brings
      // that version, and the next check decides again.
      if (httpStatusOf(err) === 409) this.#log.info({ reason }, 'callback Secret changed meanwhile; re-checking');
      else throw err;
    }
  }
}
