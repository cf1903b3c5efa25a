/**
 * Follows a set of Kubernetes objects (one kind, one namespace, a label or field selector): list,
 * then watch from the list's resourceVersion, and list again after any failure (410 Expired,
 * a dropped stream, a stall), with back-off. The owner sees a full `sync(items)` after every
 * list and `change(type, object)` for each watch event in between; bookmarks only move the
 * resourceVersion. Used for the state replicas share (range leases, agent records, the callback
 * CA Secret); the BareMetalHost watcher has its own, richer supervisor (bmh-watcher-core.ts).
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, isExpired, watchStatusOf } from './api-errors.js';

export interface KubeObject {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string } | undefined;
}

export interface FollowedList<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

export interface FollowerOptions<T extends KubeObject> {
  /** For logs and /readyz: `leases metalboot-dhcp-*`. */
  readonly what: string;
  readonly list: () => Promise<FollowedList<T>>;
  /** The collection path and the selector query the watch uses (the list's selectors). */
  readonly watchPath: string;
  readonly watchQuery: Readonly<Record<string, string>>;
  readonly kubeConfig: KubeConfig;
  readonly sync: (items: readonly T[]) => void;
  readonly change: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
  readonly logger: Logger;
  /** The server ends each watch after this long; default 300 s. */
  readonly timeoutSeconds?: number;
  /** Back-off after a failure: doubles from min to max. Defaults 500 ms and 15 s. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class ObjectFollower<T extends KubeObject> {
  readonly #o: FollowerOptions<T>;
  readonly #watch: Watch;
  #closed = false;
  #synced = false;
  #lastError: string | undefined;
  #loop: Promise<void> | undefined;
  #abort: { abort(): void } | undefined;
  #wake: (() => void) | undefined;
  readonly #firstSync: Promise<void>;
  #resolveFirst!: () => void;

  constructor(o: FollowerOptions<T>) {
    this.#o = o;
    this.#watch = new Watch(o.kubeConfig);
    this.#firstSync = new Promise((resolve) => {
      this.#resolveFirst = resolve;
    });
  }

  /** True once a list succeeded (the owner holds a full state, perhaps a stale one since). */
  get synced(): boolean {
    return this.#synced;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves at the first successful list, or after `timeoutMs` (false then). */
  async waitForSync(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await Promise.race([this.#firstSync.then(() => true), timeout]);
    clearTimeout(timer);
    return ok;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const min = this.#o.minBackoffMs ?? 500;
    const max = this.#o.maxBackoffMs ?? 15_000;
    let backoff = min;
    while (!this.#closed) {
      try {
        const listed = await this.#o.list();
        if (this.#closed) return;
        // Synced before sync() runs: what the owner does there may already rely on it.
        this.#synced = true;
        this.#o.sync(listed.items);
        this.#lastError = undefined;
        this.#resolveFirst();
        const healthy = await this.#watchFrom(listed.resourceVersion);
        if (healthy) backoff = min;
      } catch (err) {
        if (this.#closed) return;
        this.#lastError = describeError(err);
        this.#o.logger.warn({ err, what: this.#o.what }, 'kubernetes list failed; retrying');
      }
      if (this.#closed) return;
      await this.#sleep(backoff);
      backoff = Math.min(max, backoff * 2);
    }
  }

  /** One watch until it ends; true if it ended cleanly (a timeout), false on a failure. */
  async #watchFrom(resourceVersion: string): Promise<boolean> {
    let rv = resourceVersion;
    const timeoutSeconds = this.#o.timeoutSeconds ?? 300;
    return await new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (clean: boolean, why?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(stall);
        this.#abort?.abort();
        this.#abort = undefined;
        if (why !== undefined && !this.#closed) {
          this.#lastError = why;
          this.#o.logger.warn({ what: this.#o.what, reason: why }, 'kubernetes watch ended; listing again');
        }
        resolve(clean);
      };
      // A stream the server failed to end is abandoned a while after it should have ended.
      const stall = setTimeout(() => finish(false, 'stalled'), timeoutSeconds * 1000 + 30_000);
      this.#watch
        .watch(
          this.#o.watchPath,
          { ...this.#o.watchQuery, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds },
          (type, obj: T) => {
            if (settled) return;
            const next = obj?.metadata?.resourceVersion;
            if (type === 'ERROR') {
              const s = watchStatusOf(obj);
              finish(false, isExpired(s) ? 'expired' : `error event ${s.code ?? ''} ${s.message ?? ''}`.trim());
              return;
            }
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
              try {
                this.#o.change(type, obj);
              } catch (err) {
                this.#o.logger.error({ err, what: this.#o.what }, 'applying a watch event failed; listing again');
                finish(false, 'apply failed');
                return;
              }
            }
            if (next !== undefined) rv = next;
          },
          (err: unknown) => finish(err === null || err === undefined, err ? describeError(err) : undefined),
        )
        .then(
          (handle) => {
            if (settled || this.#closed) handle.abort();
            else this.#abort = handle;
          },
          (err: unknown) => finish(false, describeError(err)),
        );
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
