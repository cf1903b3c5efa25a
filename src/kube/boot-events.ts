/**
 * Kubernetes Events on the BareMetalHost for the milestones of a network boot, so
 * `kubectl describe bmh` shows what metalboot did for the host (or why it did not answer).
 *
 * Callers (DHCP, TFTP, HTTP) use the BootEvents interface: every method returns at once and
 * never throws. Occurrences go through the EventCorrelator (aggregation, per-object and global
 * token buckets, event-correlator.ts), then into a bounded queue that one worker drains with
 * core/v1 Event creates and JSON patches. A full queue or a slow API server drops events
 * (counted); it never slows a packet down.
 */
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { HostRecord } from '../leases/host.js';
import type { Service } from '../base/service.js';
import {
  DEFAULT_EVENT_LIMITS,
  EventCorrelator,
  type EventLimits,
  type EventRecord,
  type EventRef,
  type EventType,
} from './event-correlator.js';
import { describeError, httpStatusOf } from './api-errors.js';
import { MetalbootError } from '../base/errors.js';

/** Event reasons metalboot posts (CamelCase, as Kubernetes components do). */
export const BOOT_EVENT_REASONS = {
  leaseOffered: 'DHCPLeaseOffered',
  leaseAcknowledged: 'DHCPLeaseAcknowledged',
  leaseRefused: 'DHCPLeaseRefused',
  bootFileServed: 'BootFileServed',
  scriptServed: 'BootScriptServed',
  dhcpDropped: 'DHCPDropped',
  tftpDropped: 'TFTPDropped',
  httpDropped: 'HTTPDropped',
} as const;

export type BootProtocol = 'dhcp' | 'tftp' | 'http';

/**
 * Boot milestones of a known host. Implementations return immediately and never throw; hosts
 * that are not BareMetalHosts in the cluster (static hosts, manifest files) are ignored.
 */
export interface BootEvents {
  /** A DHCPOFFER was sent. `detail`: e.g. "to <mac> (PXE firmware, arch 7); boot file snponly.efi over TFTP". */
  leaseOffered(host: HostRecord, ip: string, detail?: string): void;
  /** A DHCPACK was sent. */
  leaseAcknowledged(host: HostRecord, ip: string, detail?: string): void;
  /** A DHCPNAK was sent: the host asked for an address that is not its own. */
  leaseRefused(host: HostRecord, why: string): void;
  /** An iPXE binary (or other boot file) was served completely. */
  bootFileServed(host: HostRecord, file: string, via: 'tftp' | 'http'): void;
  /** A boot script was served; `script` names which (inspector, installer, local-boot…). */
  scriptServed(host: HostRecord, script: string, detail?: string): void;
  /** A request of this host was not answered; `reason` is the named drop reason. */
  dropped(host: HostRecord, reason: string, detail?: string, via?: BootProtocol): void;
}

/** For when there is no cluster: every milestone is ignored. */
export const NO_BOOT_EVENTS: BootEvents = {
  leaseOffered() {},
  leaseAcknowledged() {},
  leaseRefused() {},
  bootFileServed() {},
  scriptServed() {},
  dropped() {},
};

// ---------------------------------------------------------------- the API, narrowed

export type JsonPatchOp = { readonly op: 'replace' | 'add'; readonly path: string; readonly value: unknown };

/** The two Event calls; kubeEventSink() is the real one. Failures reject with an HTTP status where there is one. */
export interface EventSink {
  create(namespace: string, body: CoreV1Event): Promise<void>;
  patch(namespace: string, name: string, ops: readonly JsonPatchOp[]): Promise<void>;
}

export function kubeEventSink(kc: KubeConfig): EventSink {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async create(namespace, body) {
      await core.createNamespacedEvent({ namespace, body });
    },
    async patch(namespace, name, ops) {
      // client-node sends application/json-patch+json by default.
      await core.patchNamespacedEvent({ namespace, name, body: ops });
    },
  };
}

export interface EventSource {
  /** source.component and reportingComponent. */
  readonly component: string;
  /** reportingInstance: the pod name (HOSTNAME in a pod). */
  readonly instance: string | undefined;
  /** source.host: the node name, when the pod is told it (downward API NODE_NAME). */
  readonly host: string | undefined;
}

/** The core/v1 Event for a record. Pure. */
export function coreEventBody(e: EventRecord, source: EventSource): CoreV1Event {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: e.name, namespace: e.namespace },
    involvedObject: {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      name: e.ref.name,
      namespace: e.ref.namespace,
      ...(e.ref.uid === undefined ? {} : { uid: e.ref.uid }),
    },
    reason: e.reason,
    message: e.message,
    type: e.type,
    count: e.count,
    firstTimestamp: new Date(e.firstTimestamp),
    lastTimestamp: new Date(e.lastTimestamp),
    source: { component: source.component, ...(source.host === undefined ? {} : { host: source.host }) },
    reportingComponent: source.component,
    reportingInstance: source.instance ?? '',
  };
}

/** The JSON patch that records a repeat. */
export function repeatPatch(e: EventRecord): JsonPatchOp[] {
  return [
    { op: 'replace', path: '/count', value: e.count },
    // metav1.Time: RFC 3339 in whole seconds.
    { op: 'replace', path: '/lastTimestamp', value: new Date(e.lastTimestamp).toISOString().replace(/\.\d{3}Z$/, 'Z') },
  ];
}

// ---------------------------------------------------------------- the recorder

export interface BmhEventRecorderOptions {
  readonly sink: EventSink;
  /** The cluster object of a host, or undefined when it is not a BareMetalHost in the cluster. */
  readonly resolve: (host: HostRecord) => EventRef | undefined;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly limits?: Partial<EventLimits>;
  readonly source?: Partial<EventSource>;
  /** Operations waiting for the API server; beyond this, new events are dropped. */
  readonly maxQueue?: number;
  /** A create or patch that takes longer is abandoned. */
  readonly requestTimeoutMs?: number;
  /** How long close() lets the queue drain. */
  readonly closeTimeoutMs?: number;
  readonly now?: () => number;
}

type QueueItem = { kind: 'create' | 'patch'; event: EventRecord };

export const SUPPRESS_REASONS = ['object-rate', 'global-rate', 'queue-full'] as const;

export class BmhEventRecorder implements BootEvents, Service {
  readonly name = 'bmh-events';
  readonly #o: BmhEventRecorderOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #correlator: EventCorrelator;
  readonly #source: EventSource;
  readonly #maxQueue: number;
  readonly #queue: QueueItem[] = [];
  /** Queued items by Event name: a repeat updates the queued item instead of adding one. */
  readonly #queued = new Map<string, QueueItem>();
  #draining: Promise<void> | undefined;
  #closed = false;
  #warnedForbidden = false;
  readonly #posted: Counter<'op' | 'reason'>;
  readonly #suppressed: Counter<'why'>;
  readonly #failed: Counter<'op'>;

  constructor(o: BmhEventRecorderOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'bmh-events' });
    this.#now = o.now ?? Date.now;
    this.#correlator = new EventCorrelator({ ...DEFAULT_EVENT_LIMITS, ...o.limits }, this.#now());
    this.#source = { component: 'metalboot', instance: undefined, host: undefined, ...o.source };
    this.#maxQueue = o.maxQueue ?? 1000;
    const registers = [o.registry];
    this.#posted = new Counter({
      name: 'metalboot_kube_events_posted_total',
      help: 'Events written to the API server, by operation (create, patch) and reason',
      labelNames: ['op', 'reason'],
      registers,
    });
    this.#suppressed = new Counter({
      name: 'metalboot_kube_events_suppressed_total',
      help: 'Event occurrences not written, by why (rate limits, full queue); repeats still count toward the next write',
      labelNames: ['why'],
      registers,
    });
    this.#failed = new Counter({
      name: 'metalboot_kube_events_failed_total',
      help: 'Event writes the API server refused or that failed, by operation',
      labelNames: ['op'],
      registers,
    });
    for (const why of SUPPRESS_REASONS) this.#suppressed.inc({ why }, 0);
    for (const op of ['create', 'patch']) this.#failed.inc({ op }, 0);
  }

  async start(): Promise<void> {}

  /** Stops taking events and lets queued ones go out within closeTimeoutMs. */
  async close(): Promise<void> {
    this.#closed = true;
    const bound = this.#o.closeTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#draining ?? Promise.resolve(), new Promise<void>((r) => (timer = setTimeout(r, bound)))]);
    clearTimeout(timer);
    this.#queue.length = 0;
    this.#queued.clear();
  }

  /** Resolves when every queued event has been sent (tests). */
  async flush(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  leaseOffered(host: HostRecord, ip: string, detail?: string): void {
    this.#record(
      host,
      BOOT_EVENT_REASONS.leaseOffered,
      'Normal',
      `offered ${ip}${detail === undefined ? '' : ` ${detail}`}`,
    );
  }

  leaseAcknowledged(host: HostRecord, ip: string, detail?: string): void {
    this.#record(
      host,
      BOOT_EVENT_REASONS.leaseAcknowledged,
      'Normal',
      `acknowledged ${ip}${detail === undefined ? '' : ` ${detail}`}`,
    );
  }

  leaseRefused(host: HostRecord, why: string): void {
    this.#record(host, BOOT_EVENT_REASONS.leaseRefused, 'Warning', `DHCPNAK: ${why}`);
  }

  bootFileServed(host: HostRecord, file: string, via: 'tftp' | 'http'): void {
    this.#record(host, BOOT_EVENT_REASONS.bootFileServed, 'Normal', `served ${file} over ${via.toUpperCase()}`);
  }

  scriptServed(host: HostRecord, script: string, detail?: string): void {
    this.#record(
      host,
      BOOT_EVENT_REASONS.scriptServed,
      'Normal',
      `served the ${script} boot script${detail === undefined ? '' : `: ${detail}`}`,
    );
  }

  dropped(host: HostRecord, reason: string, detail?: string, via: BootProtocol = 'dhcp'): void {
    const eventReason =
      via === 'dhcp'
        ? BOOT_EVENT_REASONS.dhcpDropped
        : via === 'tftp'
          ? BOOT_EVENT_REASONS.tftpDropped
          : BOOT_EVENT_REASONS.httpDropped;
    this.#record(
      host,
      eventReason,
      'Warning',
      `${via.toUpperCase()} request not answered: ${reason}${detail === undefined ? '' : ` (${detail})`}`,
    );
  }

  #record(host: HostRecord, reason: string, type: EventType, message: string): void {
    if (this.#closed) return;
    try {
      const ref = this.#o.resolve(host);
      if (ref === undefined) return;
      const action = this.#correlator.observe({ ref, reason, type, message }, this.#now());
      if (action.kind === 'suppress') {
        this.#suppressed.inc({ why: action.why });
        return;
      }
      this.#enqueue(action);
    } catch (err) {
      // Never into the packet path.
      this.#log.error({ err }, 'event not recorded');
    }
  }

  #enqueue(item: QueueItem): void {
    const queued = this.#queued.get(item.event.name);
    if (queued !== undefined) {
      // Still waiting: send the newest count with it (a queued create stays a create).
      queued.event = item.event;
      return;
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.#suppressed.inc({ why: 'queue-full' });
      return;
    }
    const copy: QueueItem = { kind: item.kind, event: item.event };
    this.#queue.push(copy);
    this.#queued.set(copy.event.name, copy);
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
    });
  }

  async #drain(): Promise<void> {
    for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
      this.#queued.delete(item.event.name);
      await this.#send(item);
    }
  }

  async #send(item: QueueItem): Promise<void> {
    const e = item.event;
    if (item.kind === 'patch') {
      try {
        await this.#bounded(this.#o.sink.patch(e.namespace, e.name, repeatPatch(e)));
        this.#posted.inc({ op: 'patch', reason: e.reason });
        return;
      } catch (err) {
        // Gone (Events expire after an hour by default) or never created: create it anew.
        if (httpStatusOf(err) !== 404) return this.#failure('patch', e, err);
      }
    }
    try {
      await this.#bounded(this.#o.sink.create(e.namespace, coreEventBody(e, this.#source)));
      this.#posted.inc({ op: 'create', reason: e.reason });
    } catch (err) {
      // 409: a create that timed out here but reached the server; later patches find it.
      if (httpStatusOf(err) === 409) return;
      this.#failure('create', e, err);
    }
  }

  #failure(op: 'create' | 'patch', e: EventRecord, err: unknown): void {
    this.#failed.inc({ op });
    const status = httpStatusOf(err);
    const fields = { op, host: `${e.ref.namespace}/${e.ref.name}`, reason: e.reason, err: describeError(err) };
    if (status === 403 && !this.#warnedForbidden) {
      this.#warnedForbidden = true;
      this.#log.warn(fields, 'not allowed to write events: grant create/patch on events (see docs/kubernetes.md)');
    } else {
      this.#log.debug(fields, 'event not written');
    }
  }

  #bounded<T>(p: Promise<T>): Promise<T> {
    const ms = this.#o.requestTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MetalbootError('KUBE_ERR_EVENT_TIMEOUT', `no answer within ${ms} ms`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}
