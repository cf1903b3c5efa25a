/**
 * The Ironic proxies wing: the agents' addresses (kept in proxy.stateDir), the callback
 * listener for Ironic → IPA, and the options of the API proxy the HTTP app registers.
 */
import type { Config } from '../config/load.js';
import type { Service } from '../base/service.js';
import { AgentStore } from '../proxy/agent-store.js';
import { callbackTlsSource } from '../proxy/callback-tls.js';
import type { AgentCall, IronicApiProxyOptions } from '../proxy/api-proxy.js';
import { type AgentCallback, CallbackServer } from '../proxy/callback-server.js';
import type { Wiring } from './deps.js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { LeaderElector } from '../kube/leader-election.js';
import { AgentConfigMaps } from '../kube/agent-records.js';
import { CallbackSecret } from '../kube/callback-secret.js';
import { readExistingCa } from '../proxy/callback-tls.js';
import { parseBaseUrl } from '../proxy/proxy-urls.js';

/** Replicas with leader election: agent records in ConfigMaps, the callback CA in a Secret. */
export interface SharedProxyState {
  readonly cluster: () => KubeConfig;
  readonly leader: LeaderElector;
}

export interface ProxiesWing {
  readonly services: readonly Service[];
  readonly agents: AgentStore;
  readonly callback: CallbackServer | undefined;
  /** The API proxy for the HTTP app; undefined without --ironic-api-url. */
  readonly ironicApi: Omit<IronicApiProxyOptions, 'registry'> | undefined;
}

/** What the proxies tell the boot timelines (wiring/timeline.ts's milestones). */
export interface ProxyReports {
  readonly onAgentCall: (call: AgentCall) => void;
  readonly onForwarded: (call: AgentCallback) => void;
}

export function proxiesWing(
  config: Config,
  w: Wiring,
  shared: SharedProxyState | undefined,
  reports: ProxyReports,
): ProxiesWing {
  const p = config.proxy;
  const { logger, registry, now } = w;
  const le = config.leaderElection;
  const sharing = shared !== undefined && le !== undefined;
  const backend = sharing
    ? new AgentConfigMaps({ kubeConfig: shared.cluster(), namespace: le.namespace, prefix: `${le.id}-agent`, logger })
    : undefined;
  const agents = new AgentStore({ stateDir: p.stateDir, backend, logger, registry, now });
  if (p.ironicApiUrl === undefined) return { services: [], agents, callback: undefined, ironicApi: undefined };
  const secret =
    sharing && p.callbackListen !== undefined && p.tlsCertFile === undefined
      ? new CallbackSecret({
          kubeConfig: shared.cluster(),
          namespace: le.namespace,
          name: `${le.id}-callback-tls`,
          // The host as the listener names it (an IPv6 literal without its brackets).
          hosts: [parseBaseUrl(p.callbackAdvertiseUrl, 'callbackAdvertiseUrl').hostname],
          isLeader: () => shared.leader.isLeader(),
          onLeadership: (fn) => shared.leader.onLeadership(fn),
          seedCa: p.stateDir === undefined ? undefined : () => readExistingCa(p.stateDir!),
          logger,
          now,
        })
      : undefined;
  const callback =
    p.callbackListen === undefined
      ? undefined
      : new CallbackServer({
          listen: p.callbackListen,
          advertiseUrl: p.callbackAdvertiseUrl,
          agents,
          tls: callbackTlsSource(p, secret),
          insecureSkipVerify: p.callbackInsecureSkipVerify,
          logger,
          registry,
          now,
          onForwarded: reports.onForwarded,
        });
  return {
    services: [agents, ...(secret === undefined ? [] : [secret]), ...(callback === undefined ? [] : [callback])],
    agents,
    callback,
    ironicApi: {
      ironicApiUrl: p.ironicApiUrl,
      apiAdvertiseUrl: p.apiAdvertiseUrl,
      agents,
      callback,
      onAgentCall: reports.onAgentCall,
      // No agent may point at a port of metalboot's: the HTTP listener's and the image worker's.
      ownPorts: [
        config.http.listen.port,
        ...(config.http.imageListen === undefined ? [] : [config.http.imageListen.port]),
      ],
    },
  };
}
