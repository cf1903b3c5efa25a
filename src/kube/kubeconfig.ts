/** Which cluster metalboot talks to: a kubeconfig file, or the pod's service account. */
import { KubeConfig } from '@kubernetes/client-node';
import { MetalbootError } from '../base/errors.js';

/**
 * Loads `--kubeconfig PATH`, or the in-cluster service account when no path is given. Throws
 * KUBE_ERR_CONFIG with the reason when neither is usable.
 */
export function loadKubeConfig(o: {
  readonly kubeconfig?: string | undefined;
  readonly inClusterPathPrefix?: string;
  readonly env?: NodeJS.ProcessEnv;
}): KubeConfig {
  const kc = new KubeConfig();
  const fail = (why: string): never => {
    throw new MetalbootError('KUBE_ERR_CONFIG', `--kube: ${why}`);
  };
  if (o.kubeconfig !== undefined && o.kubeconfig !== '') {
    try {
      kc.loadFromFile(o.kubeconfig);
    } catch (err) {
      fail(`cannot load kubeconfig ${o.kubeconfig}: ${(err as Error).message}`);
    }
    if (kc.getCurrentCluster() === null) fail(`kubeconfig ${o.kubeconfig} has no current context with a cluster`);
    return kc;
  }
  const env = o.env ?? process.env;
  if (!env['KUBERNETES_SERVICE_HOST'] || !env['KUBERNETES_SERVICE_PORT']) {
    fail('not running in a cluster (KUBERNETES_SERVICE_HOST/PORT are not set): pass --kubeconfig');
  }
  kc.loadFromCluster(o.inClusterPathPrefix);
  return kc;
}
