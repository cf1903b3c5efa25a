/**
 * Which CPUs a server under test and its load generator get, so that every server in a
 * comparison is pinned the same way (taskset -c).
 */

export interface Pinning {
  /** taskset -c list for the server (all its processes and threads). */
  readonly server: string;
  /** taskset -c list for the clients (and anything on their side, such as an upstream). */
  readonly clients: string;
  /** True when the clients have no CPU of their own and run on the server's too. */
  readonly shared: boolean;
}

/**
 * The server on CPUs 0..serverCpus-1, the clients on the rest; when nothing is left (a server
 * given every CPU), the clients share all of them. Throws when the server wants more CPUs than
 * there are.
 */
export function pinning(nproc: number, serverCpus: number): Pinning {
  if (!Number.isSafeInteger(serverCpus) || serverCpus < 1 || serverCpus > nproc)
    throw new Error(`cannot pin a server to ${serverCpus} of ${nproc} CPUs`);
  const list = (from: number, to: number): string => (from === to ? String(from) : `${from}-${to}`);
  const server = list(0, serverCpus - 1);
  if (serverCpus === nproc) return { server, clients: list(0, nproc - 1), shared: true };
  return { server, clients: list(serverCpus, nproc - 1), shared: false };
}
