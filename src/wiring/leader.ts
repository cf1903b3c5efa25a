/**
 * Leader election among replicas (leaderElection.id): one LeaderElector per process. Nothing
 * depends on leadership yet; every replica serves and /readyz never waits for it.
 */
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/load.js';
import { kubeLeaseApi, LeaderElector } from '../kube/leader-election.js';
import type { Wiring } from './deps.js';

export function leaderWing(
  config: Config,
  w: Wiring,
  kc: () => KubeConfig,
  hostname: string,
): LeaderElector | undefined {
  const le = config.leaderElection;
  if (le === undefined) return undefined;
  return new LeaderElector({
    api: kubeLeaseApi(kc(), le.namespace, le.id),
    // The pod name and a random suffix: a restarted pod is a new candidate, as in client-go's users.
    identity: `${hostname}_${randomBytes(4).toString('hex')}`,
    lease: `${le.namespace}/${le.id}`,
    timing: {
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
    },
    logger: w.logger,
    registry: w.registry,
    now: w.now,
  });
}
