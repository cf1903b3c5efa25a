/**
 * Agent records (proxy/agent-store.ts) shared by replicas through the Kubernetes API: one
 * ConfigMap per node, `<prefix>-<sha256(node)[0:20]>` (node names need not be DNS names),
 * labelled `metalboot.io/ipa-agents=<prefix>`, the record as `record.json` in the same format
 * as the files. A heartbeat through replica A writes it; every replica follows the ConfigMaps
 * (list + watch) into memory, and a callback that still misses reads the node's one. Writes carry the resourceVersion read (409: read again, write once
 * more — the later accepted heartbeat wins, as with files).
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  formatAgentRecord,
  parseAgentRecord,
  type AgentRecord,
  type AgentRecordBackend,
} from '../proxy/agent-store.js';
import { httpStatusOf } from './api-errors.js';
import { labelValueOf } from './range-leases.js';
import { ObjectFollower } from './object-follower.js';

export const AGENTS_LABEL = 'metalboot.io/ipa-agents';
const KEY = 'record.json';

/** The ConfigMap name of `node`. Pure. */
export function agentConfigMapName(prefix: string, node: string): string {
  return `${prefix}-${createHash('sha256').update(node).digest('hex').slice(0, 20)}`;
}

export class AgentConfigMaps implements AgentRecordBackend {
  readonly where: string;
  readonly #api: CoreV1Api;
  readonly #kc: KubeConfig;
  readonly #namespace: string;
  readonly #prefix: string;
  readonly #log: Logger;
  #follower: ObjectFollower<V1ConfigMap> | undefined;

  constructor(o: { kubeConfig: KubeConfig; namespace: string; prefix: string; logger: Logger }) {
    this.#api = o.kubeConfig.makeApiClient(CoreV1Api);
    this.#kc = o.kubeConfig;
    this.#namespace = o.namespace;
    this.#prefix = o.prefix;
    this.#log = o.logger;
    this.where = `ConfigMaps ${o.namespace}/${AGENTS_LABEL}=${o.prefix}`;
  }

  follow(changed: (r: AgentRecord) => void): void {
    const labelSelector = `${AGENTS_LABEL}=${labelValueOf(this.#prefix)}`;
    const take = (cm: V1ConfigMap): void => {
      const r = this.#parse(cm);
      if (r !== undefined) changed(r);
    };
    this.#follower ??= new ObjectFollower<V1ConfigMap>({
      what: this.where,
      list: async () => {
        const l = await this.#api.listNamespacedConfigMap({ namespace: this.#namespace, labelSelector });
        return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
      watchPath: `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/configmaps`,
      watchQuery: { labelSelector },
      kubeConfig: this.#kc,
      sync: (items) => {
        for (const cm of items) take(cm);
      },
      // A deleted record is forgotten by nobody: callbacks for it fail at the agent anyway.
      change: (type, cm) => {
        if (type !== 'DELETED') take(cm);
      },
      logger: this.#log,
    });
    this.#follower.start();
  }

  async stop(): Promise<void> {
    await this.#follower?.close();
  }

  async loadAll(): Promise<readonly AgentRecord[]> {
    const l = await this.#api.listNamespacedConfigMap({
      namespace: this.#namespace,
      labelSelector: `${AGENTS_LABEL}=${labelValueOf(this.#prefix)}`,
    });
    return l.items.flatMap((cm) => {
      const r = this.#parse(cm);
      return r === undefined ? [] : [r];
    });
  }

  async read(node: string): Promise<AgentRecord | undefined> {
    const cm = await this.#get(agentConfigMapName(this.#prefix, node));
    const r = cm === undefined ? undefined : this.#parse(cm);
    return r?.node === node ? r : undefined;
  }

  async write(r: AgentRecord): Promise<void> {
    const name = agentConfigMapName(this.#prefix, r.node);
    let current = await this.#get(name);
    for (let attempt = 0; ; attempt++) {
      const body: V1ConfigMap = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace: this.#namespace,
          labels: { [AGENTS_LABEL]: labelValueOf(this.#prefix), 'app.kubernetes.io/managed-by': 'metalboot' },
          ...(current?.metadata?.resourceVersion === undefined
            ? {}
            : { resourceVersion: current.metadata.resourceVersion }),
        },
        data: { [KEY]: formatAgentRecord(r) },
      };
      try {
        if (current === undefined) await this.#api.createNamespacedConfigMap({ namespace: this.#namespace, body });
        else await this.#api.replaceNamespacedConfigMap({ namespace: this.#namespace, name, body });
        return;
      } catch (err) {
        if (httpStatusOf(err) !== 409 || attempt >= 2) throw err;
        current = await this.#get(name);
      }
    }
  }

  async #get(name: string): Promise<V1ConfigMap | undefined> {
    try {
      return await this.#api.readNamespacedConfigMap({ namespace: this.#namespace, name });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  #parse(cm: V1ConfigMap): AgentRecord | undefined {
    const text = cm.data?.[KEY];
    const r = text === undefined ? undefined : parseAgentRecord(text);
    if (r === undefined)
      this.#log.warn({ configMap: cm.metadata?.name }, 'ignoring a malformed agent record ConfigMap');
    return r;
  }
}
