/**
 * One watch through @kubernetes/client-node's Watch, for tests of the API server fixture: its
 * events as they arrive and the outcome its done() callback got.
 */
import { type KubeConfig, Watch } from '@kubernetes/client-node';

export type WatchEvent = {
  type: string;
  object: {
    kind?: string;
    apiVersion?: string;
    metadata?: {
      name?: string;
      resourceVersion?: string;
      creationTimestamp?: unknown;
      annotations?: Record<string, string>;
    };
    code?: number;
    reason?: string;
    message?: string;
    [key: string]: unknown;
  };
};

/** Runs Watch.watch; `cleanups` gets the abort, for the test's afterEach. */
export function watchOnce(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean>,
  cleanups: (() => Promise<void> | void)[],
): { readonly events: WatchEvent[]; readonly done: Promise<unknown> } {
  const events: WatchEvent[] = [];
  let resolveDone!: (err: unknown) => void;
  const done = new Promise<unknown>((resolve) => {
    resolveDone = resolve;
  });
  const controller = new Watch(kc).watch(
    path,
    query,
    (type, object) => events.push({ type, object: object as WatchEvent['object'] }),
    (err) => resolveDone(err),
  );
  cleanups.push(async () => (await controller).abort());
  return { events, done };
}

/** `TYPE name` (or the kind, for a bookmark or an error) per event, for compact assertions. */
export const summary = (events: readonly WatchEvent[]): string[] =>
  events.map((e) => `${e.type} ${e.object.metadata?.name ?? e.object.kind ?? ''}`.trim());
