// Client configuration for the Kubernetes API server fixture: a kubeconfig that
// @kubernetes/client-node's KubeConfig.loadFromString / loadFromFile accepts, and the
// service-account files plus environment that KubeConfig.loadFromCluster(pathPrefix) reads.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { stringify } from 'yaml';

/** What the helpers need from a running fixture (a KubeApiServer satisfies it). */
export interface KubeServerAddress {
  readonly url: string;
  readonly port: number;
  readonly ca: string | undefined;
  readonly token: string | undefined;
}

export interface KubeconfigOptions {
  /** Override the server's token (null: no user credentials at all). */
  readonly token?: string | null;
  /** Context namespace. */
  readonly namespace?: string;
  /** Use insecure-skip-tls-verify instead of certificate-authority-data (always set for http). */
  readonly insecureSkipTlsVerify?: boolean;
  /** Cluster/user/context name (default "fixture"). */
  readonly name?: string;
}

/** A kubeconfig YAML document pointing at the fixture. */
export function kubeconfigFor(server: KubeServerAddress, options: KubeconfigOptions = {}): string {
  const name = options.name ?? 'fixture';
  const cluster: Record<string, unknown> = { server: server.url };
  if (server.ca === undefined || options.insecureSkipTlsVerify === true) {
    // client-node 1.x refuses an http:// server unless the cluster has insecure-skip-tls-verify
    // ("HTTP protocol is not allowed when skipTLSVerify is not set or false", config.ts
    // createAgent), so a plain-HTTP fixture always needs it.
    cluster['insecure-skip-tls-verify'] = true;
  } else {
    cluster['certificate-authority-data'] = Buffer.from(server.ca).toString('base64');
  }
  const token = options.token === undefined ? server.token : options.token;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name, cluster }],
    users: [{ name, user: token === undefined || token === null ? {} : { token } }],
    contexts: [
      {
        name,
        context: {
          cluster: name,
          user: name,
          ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
        },
      },
    ],
    'current-context': name,
  });
}

/** Writes kubeconfigFor(server) to a new temporary directory; returns the file's path. */
export async function writeKubeconfig(
  server: KubeServerAddress,
  options: KubeconfigOptions & { readonly dir?: string } = {},
): Promise<string> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kubeconfig-')));
  const file = join(dir, 'kubeconfig');
  await writeFile(file, kubeconfigFor(server, options), { mode: 0o600 });
  return file;
}

export interface InClusterFiles {
  /** Pass to KubeConfig.loadFromCluster(pathPrefix). */
  readonly pathPrefix: string;
  /** The environment a pod gets: set these in process.env before loadFromCluster. */
  readonly env: { readonly KUBERNETES_SERVICE_HOST: string; readonly KUBERNETES_SERVICE_PORT: string };
  /** The service-account directory (token, ca.crt, namespace). */
  readonly serviceAccountDir: string;
}

/**
 * Writes <prefix>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace} for a
 * TLS fixture. In-cluster clients always speak https (client-node picks http only for ports
 * 80, 8080 and 8001), so the fixture must have been started with `tls: true`.
 */
export async function writeInClusterFiles(
  server: KubeServerAddress,
  options: { readonly namespace?: string; readonly dir?: string } = {},
): Promise<InClusterFiles> {
  if (server.ca === undefined)
    throw new Error('writeInClusterFiles: start the fixture with tls: true (in-cluster clients use https)');
  const pathPrefix = options.dir ?? (await mkdtemp(join(tmpdir(), 'incluster-')));
  const serviceAccountDir = join(pathPrefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  await mkdir(serviceAccountDir, { recursive: true });
  await writeFile(join(serviceAccountDir, 'token'), server.token ?? '', { mode: 0o600 });
  await writeFile(join(serviceAccountDir, 'ca.crt'), server.ca);
  await writeFile(join(serviceAccountDir, 'namespace'), options.namespace ?? 'default');
  return {
    pathPrefix,
    serviceAccountDir,
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) },
  };
}
