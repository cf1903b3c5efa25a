/**
 * Which iPXE script a host gets, from its lease source and BareMetalHost provisioning state
 * (metal3 baremetal-operator states). Pure. Order matters: an explicit state wins; a host
 * without a BareMetalHost state follows Ironic's own rule (the per-node config if Ironic has
 * prepared one, else inspection), which the HTTP shell applies when it fetches the config.
 */
import type { HostRecord } from '../leases/host.js';

export type ScriptKind = 'inspector' | 'installer' | 'localboot' | 'ironic-or-inspector';

export interface ScriptChoice {
  readonly kind: ScriptKind;
  readonly why: string;
}

const INSPECTOR_STATES = new Set(['registering', 'inspecting', 'match profile', 'unmanaged', '']);
const INSTALLER_STATES = new Set([
  'preparing',
  'provisioning',
  'deprovisioning',
  'cleaning',
  'servicing',
  'deleting',
  'powering off before delete',
]);
const LOCAL_BOOT_STATES = new Set(['provisioned', 'externally provisioned', 'available', 'ready', 'detached']);

export function chooseScript(host: HostRecord): ScriptChoice {
  const state = host.provisioningState;
  if (state === undefined) {
    return {
      kind: 'ironic-or-inspector',
      why: `${host.origin.kind} host without a provisioning state: Ironic's per-node config if present, else inspection`,
    };
  }
  const shown = `BareMetalHost ${host.origin.name} ${state === '' ? 'has no provisioning state yet' : `is in state ${state}`}`;
  if (LOCAL_BOOT_STATES.has(state)) return { kind: 'localboot', why: shown };
  if (INSTALLER_STATES.has(state)) return { kind: 'installer', why: shown };
  if (INSPECTOR_STATES.has(state)) return { kind: 'inspector', why: shown };
  return { kind: 'inspector', why: `${shown}, which metalboot does not know: inspecting` };
}
