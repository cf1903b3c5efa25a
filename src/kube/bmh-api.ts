/**
 * The Kubernetes API as the BareMetalHost watcher uses it: list pages and a watch stream of
 * metal3.io/v1alpha1 baremetalhosts, narrowed to the two calls it makes.
 */
import {
  CustomObjectsApi,
  Observable,
  Watch,
  type ConfigurationOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { KubeBareMetalHost } from './bmh-mirror.js';

export const BMH_GROUP = 'metal3.io';
export const BMH_VERSION = 'v1alpha1';
export const BMH_PLURAL = 'baremetalhosts';

export interface BmhListPage {
  readonly resourceVersion: string;
  readonly continue: string | undefined;
  readonly items: readonly KubeBareMetalHost[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** The two calls the watcher makes; kubeBmhApi() is the real one, tests may fake it. */
export interface BmhApi {
  list(o: {
    readonly limit: number;
    readonly continue: string | undefined;
    readonly signal: AbortSignal;
  }): Promise<BmhListPage>;
  /**
   * Starts a watch; resolves once the response has started (or failed). `onDone(null)` on a
   * clean end, `onDone(err)` on failure; each at most once. The handle stops it.
   */
  watch(
    o: { readonly resourceVersion: string; readonly timeoutSeconds: number },
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
}

/** baremetalhosts through @kubernetes/client-node (CustomObjectsApi list, Watch). */
export function kubeBmhApi(kc: KubeConfig, namespace: string | undefined): BmhApi {
  const objects = kc.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kc);
  const path =
    namespace === undefined
      ? `/apis/${BMH_GROUP}/${BMH_VERSION}/${BMH_PLURAL}`
      : `/apis/${BMH_GROUP}/${BMH_VERSION}/namespaces/${encodeURIComponent(namespace)}/${BMH_PLURAL}`;
  return {
    async list({ limit, continue: cont, signal }) {
      // The generated client has no per-call signal parameter; a middleware sets it.
      const options: ConfigurationOptions = {
        middleware: [
          {
            pre: (ctx) => {
              ctx.setSignal(signal);
              return new Observable(Promise.resolve(ctx));
            },
            post: (ctx) => new Observable(Promise.resolve(ctx)),
          },
        ],
        middlewareMergeStrategy: 'append',
      };
      const base = { group: BMH_GROUP, version: BMH_VERSION, plural: BMH_PLURAL, limit, _continue: cont };
      const body = (
        namespace === undefined
          ? await objects.listClusterCustomObject(base, options)
          : await objects.listNamespacedCustomObject({ ...base, namespace }, options)
      ) as {
        metadata?: { resourceVersion?: string; continue?: string };
        items?: KubeBareMetalHost[];
      };
      return {
        resourceVersion: body.metadata?.resourceVersion ?? '',
        continue: body.metadata?.continue || undefined,
        items: body.items ?? [],
      };
    },
    watch({ resourceVersion, timeoutSeconds }, onEvent, onDone) {
      return watcher.watch(
        path,
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (type, obj) => onEvent(type as WatchEventType, obj),
        onDone,
      );
    },
  };
}
