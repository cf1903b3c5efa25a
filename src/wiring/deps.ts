/** What every wing builder is given: the process's logger, metrics registry and clock. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { InterfaceTable } from '../net/interfaces.js';

export interface Deps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
  /** The cluster to use with sources.kube (default: --kubeconfig, else in-cluster). */
  readonly kubeConfig?: KubeConfig;
  /** This machine's name, the boot Events' reporting instance (default: os.hostname()). */
  readonly hostname?: string;
  /** The interfaces and their addresses (default: os.networkInterfaces()). */
  readonly networkInterfaces?: () => InterfaceTable;
}

/** Deps with the defaults filled in, as the wings receive them. */
export interface Wiring {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now: () => number;
}
