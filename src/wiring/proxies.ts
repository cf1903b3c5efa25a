/**
 * The Ironic proxies wing: the agents' addresses (kept in proxy.stateDir), the callback
 * listener for Ironic → IPA, and the options of the API proxy the HTTP app registers.
 */
import type { Config } from '../config/load.js';
import type { Service } from '../base/service.js';
import { AgentStore } from '../proxy/agent-store.js';
import { CallbackServer } from '../proxy/callback-server.js';
import { callbackTlsSource } from '../proxy/callback-tls.js';
import type { IronicApiProxyOptions } from '../proxy/api-proxy.js';
import type { Wiring } from './deps.js';

export interface ProxiesWing {
  readonly services: readonly Service[];
  readonly agents: AgentStore;
  readonly callback: CallbackServer | undefined;
  /** The API proxy for the HTTP app; undefined without --ironic-api-url. */
  readonly ironicApi: Omit<IronicApiProxyOptions, 'registry'> | undefined;
}

export function proxiesWing(config: Config, w: Wiring): ProxiesWing {
  const p = config.proxy;
  const { logger, registry, now } = w;
  const agents = new AgentStore({ stateDir: p.stateDir, logger, registry, now });
  if (p.ironicApiUrl === undefined) return { services: [], agents, callback: undefined, ironicApi: undefined };
  const callback =
    p.callbackListen === undefined
      ? undefined
      : new CallbackServer({
          listen: p.callbackListen,
          advertiseUrl: p.callbackAdvertiseUrl,
          agents,
          tls: callbackTlsSource(p),
          insecureSkipVerify: p.callbackInsecureSkipVerify,
          logger,
          registry,
          now,
        });
  return {
    services: callback === undefined ? [agents] : [agents, callback],
    agents,
    callback,
    ironicApi: {
      ironicApiUrl: p.ironicApiUrl,
      apiAdvertiseUrl: p.apiAdvertiseUrl,
      agents,
      callback,
      // No agent may point at a port of metalboot's: the HTTP listener's and the image worker's.
      ownPorts: [
        config.http.listen.port,
        ...(config.http.imageListen === undefined ? [] : [config.http.imageListen.port]),
      ],
    },
  };
}
