/**
 * A stand-in for the Ironic API (ironic/api/controllers/v1/ramdisk.py and the conductor's
 * heartbeat handling) and for the conductor's agent client (ironic/drivers/modules/
 * agent_client.py), on 127.0.0.1:0 over plain HTTP.
 *
 * API, as Ironic answers IPA:
 * - `GET /`, `GET /v1`, `GET /v1/`: version documents whose links are built from Ironic's public
 *   URL (`publicUrl`, else the request's Host: Ironic's host_url), with the microversion headers
 *   and a request id;
 * - microversions: none → 1.1; above the maximum → 406; ramdisk endpoints need 1.22;
 * - `GET /v1/lookup?addresses=…[&node_uuid=]` → `{node, config}`, the node with Ironic's lookup
 *   fields (uuid, properties, instance_info, driver_internal_info) and its `links` (self and
 *   bookmark, built from Ironic's public URL: `publicUrl`, else the request's Host); from 1.62
 *   the first lookup of a node carries its agent token, later ones `******`. Invalid addresses
 *   are skipped; with node_uuid the addresses are not looked at; 404 when no node, or more than
 *   one node, has a port with one of the addresses (get_node_by_port_addresses); 400 with
 *   neither a valid address nor node_uuid;
 * - `POST /v1/heartbeat/{node}` → 202 with no body. 400 when: agent_verify_ca is sent below
 *   1.68, callback_url is not http(s), it differs from the stored agent_url ("Detected change
 *   in ramdisk provided "callback_url""), the token is missing or wrong, or agent_verify_ca
 *   differs from the stored one. The first accepted heartbeat stores agent_url and
 *   agent_verify_ca, which stay until the node reboots (`reboot()`);
 * - `POST /v1/continue_inspection[?node_uuid=]`: the body is hashed as it arrives, then
 *   validated like Ironic's DATA_VALIDATOR (inventory.interfaces[].mac_address); the node is
 *   found by MAC or node_uuid → 202 with `{node, config}` from 1.84, `{uuid}` before; bodies
 *   over `maxInspectionBytes` → 413;
 * - anything else → 404 (recorded, so tests can prove the proxy never forwarded it).
 *
 * Agent client, as the conductor calls IPA: `POST {agent_url}/v1/commands/?wait=…&
 * agent_token=T` with `{"name", "params"}`, `GET {agent_url}/v1/commands/?agent_token=T`,
 * over https verifying against the stored agent_verify_ca only (requests' `verify=<path>`),
 * host name checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

export const IRONIC_MAX_VERSION = '1.99';

export interface IronicNodeSpec {
  readonly uuid: string;
  readonly macs: readonly string[];
}

export interface IronicNodeState {
  readonly uuid: string;
  readonly macs: readonly string[];
  token: string | undefined;
  tokenHandedOut: boolean;
  agentUrl: string | undefined;
  agentVerifyCa: string | undefined;
  heartbeats: number;
  /** Heartbeats refused, with Ironic's faultstring. */
  readonly refusals: string[];
  inspection: { readonly bytes: number; readonly sha256: string } | undefined;
}

export interface IronicRequestRecord {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  status?: number;
}

export interface AgentCallResult {
  readonly status: number;
  readonly text: string;
  json<T = unknown>(): T;
}

export interface IronicFixture {
  readonly url: string;
  readonly requests: IronicRequestRecord[];
  node(uuid: string): IronicNodeState;
  /**
   * Ironic powers the node off/reboots it: agent_url and agent_verify_ca go, and the token
   * too unless it was pre-generated (virtual media: `keepToken`), as
   * wipe_internal_info_on_power_off does.
   */
  reboot(uuid: string, o?: { readonly keepToken?: boolean }): void;
  /** Bytes of the inspection body received so far (for streaming assertions). */
  inspectionBytesSoFar(): number;
  /** Called after each accepted heartbeat, before Ironic answers it (the conductor is async). */
  onHeartbeat: ((node: IronicNodeState) => void) | undefined;
  /** Delay before answering an accepted heartbeat. */
  heartbeatDelayMs: number;
  /** The conductor's agent client. */
  runCommand(uuid: string, name: string, params: Record<string, unknown>, wait: boolean): Promise<AgentCallResult>;
  commandsStatus(uuid: string): Promise<AgentCallResult>;
  close(): Promise<void>;
}

function parseVersion(h: string | undefined): [number, number] | 'bad' {
  if (h === undefined) return [1, 1];
  if (h === 'latest') return parseVersion(IRONIC_MAX_VERSION);
  const m = /^(\d+)\.(\d+)$/.exec(h.trim());
  return m === null ? 'bad' : [Number(m[1]), Number(m[2])];
}
const atLeast = (v: [number, number], minor: number): boolean => v[0] > 1 || v[1] >= minor;

export async function startIronic(o: {
  readonly nodes: readonly IronicNodeSpec[];
  readonly maxInspectionBytes?: number;
  /** `[api]public_endpoint`: the base of the links Ironic writes; default the request's Host. */
  readonly publicUrl?: string;
}): Promise<IronicFixture> {
  const nodes = new Map<string, IronicNodeState>();
  for (const n of o.nodes)
    nodes.set(n.uuid, {
      uuid: n.uuid,
      macs: n.macs.map((m) => m.toLowerCase()),
      token: undefined,
      tokenHandedOut: false,
      agentUrl: undefined,
      agentVerifyCa: undefined,
      heartbeats: 0,
      refusals: [],
      inspection: undefined,
    });
  const requests: IronicRequestRecord[] = [];
  const maxInspection = o.maxInspectionBytes ?? 128 * 1024 * 1024;
  let inspectionSoFar = 0;
  const max = parseVersion(IRONIC_MAX_VERSION) as [number, number];

  /** The one node with a port among `macs`; undefined for none or several, as Ironic's query. */
  const byMac = (macs: readonly string[]): IronicNodeState | undefined => {
    const found = [...nodes.values()].filter((n) => macs.some((m) => n.macs.includes(m)));
    return found.length === 1 ? found[0] : undefined;
  };

  const server = http.createServer((req, res) => {
    const record: IronicRequestRecord = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    requests.push(record);
    const reqId = `req-${randomBytes(8).toString('hex')}`;
    const send = (status: number, value: unknown, version?: [number, number]): void => {
      record.status = status;
      const body = value === undefined ? '' : JSON.stringify(value);
      const headers: Record<string, string | number> = {
        'x-openstack-ironic-api-minimum-version': '1.1',
        'x-openstack-ironic-api-maximum-version': IRONIC_MAX_VERSION,
        'x-openstack-request-id': reqId,
        'content-length': Buffer.byteLength(body),
      };
      if (version !== undefined) headers['x-openstack-ironic-api-version'] = `${version[0]}.${version[1]}`;
      if (body !== '') headers['content-type'] = 'application/json';
      res.writeHead(status, headers);
      res.end(body);
    };
    const fault = (status: number, faultstring: string, version?: [number, number]): void =>
      send(
        status,
        {
          error_message: JSON.stringify({
            faultcode: status >= 500 ? 'Server' : 'Client',
            faultstring,
            debuginfo: null,
          }),
        },
        version,
      );

    const u = new URL(req.url ?? '/', 'http://ironic');
    // Ironic's api.request.public_url: [api]public_endpoint, else the request's host_url.
    const publicUrl = o.publicUrl ?? `http://${req.headers.host}`;
    const v = parseVersion(req.headers['x-openstack-ironic-api-version'] as string | undefined);
    const versionDoc = {
      id: 'v1',
      links: [{ href: `${publicUrl}/v1/`, rel: 'self' }],
      status: 'CURRENT',
      min_version: '1.1',
      version: IRONIC_MAX_VERSION,
    };
    const readBody = (limit: number, onChunk?: (c: Buffer) => void): Promise<Buffer | 'too-large'> =>
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let n = 0;
        let over = false;
        req.on('data', (c: Buffer) => {
          n += c.length;
          onChunk?.(c);
          if (n > limit) over = true;
          else chunks.push(c);
        });
        req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks)));
        req.on('error', () => resolve('too-large'));
      });

    void (async () => {
      if (req.method === 'GET' && u.pathname === '/') {
        return send(200, {
          name: 'OpenStack Ironic API',
          description:
            'Ironic is an OpenStack project which enables the provision and management of baremetal machines.',
          versions: [versionDoc],
          default_version: versionDoc,
        });
      }
      if (req.method === 'GET' && (u.pathname === '/v1' || u.pathname === '/v1/')) {
        return send(200, {
          ...versionDoc,
          media_types: [{ base: 'application/json', type: 'application/vnd.openstack.ironic.v1+json' }],
          lookup: [{ href: `${publicUrl}/v1/lookup/`, rel: 'self' }],
          heartbeat: [{ href: `${publicUrl}/v1/heartbeat/`, rel: 'self' }],
          version: { ...versionDoc },
        });
      }
      if (v === 'bad') return fault(400, 'Invalid value for X-OpenStack-Ironic-API-Version header');
      if (v[0] > max[0] || (v[0] === max[0] && v[1] > max[1]))
        return fault(406, `Version ${v[0]}.${v[1]} was requested but the maximum version is ${IRONIC_MAX_VERSION}`);

      if (req.method === 'GET' && u.pathname === '/v1/lookup') {
        if (!atLeast(v, 22)) return fault(404, 'Not found', v);
        const macs = (u.searchParams.get('addresses') ?? '')
          .split(',')
          .map((s) => s.trim().toLowerCase())
          .filter((s) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(s));
        const uuid = u.searchParams.get('node_uuid');
        if (macs.length === 0 && uuid === null)
          return fault(400, "Incomplete lookup request, at least one of 'addresses' or 'node_uuid' is required", v);
        const n = uuid !== null ? nodes.get(uuid) : byMac(macs);
        if (n === undefined) return fault(404, 'Not found', v);
        let token: string | undefined;
        if (atLeast(v, 62)) {
          if (n.token === undefined) n.token = randomBytes(24).toString('base64url');
          token = n.tokenHandedOut ? '******' : n.token;
          n.tokenHandedOut = true;
        }
        return send(
          200,
          {
            node: {
              uuid: n.uuid,
              properties: {},
              instance_info: {},
              driver_internal_info: {},
              links: [
                { href: `${publicUrl}/v1/nodes/${n.uuid}`, rel: 'self' },
                { href: `${publicUrl}/nodes/${n.uuid}`, rel: 'bookmark' },
              ],
            },
            config: { heartbeat_timeout: 300, agent_token: token, agent_token_required: true },
          },
          v,
        );
      }

      const hb = /^\/v1\/heartbeat\/([^/]+)$/.exec(u.pathname);
      if (req.method === 'POST' && hb !== null) {
        if (!atLeast(v, 22)) return fault(404, 'Not found', v);
        const body = await readBody(1024 * 1024);
        if (body === 'too-large') return fault(413, 'Request Entity Too Large', v);
        let b: Record<string, unknown>;
        try {
          b = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          return fault(400, 'Invalid JSON', v);
        }
        const n = nodes.get(decodeURIComponent(hb[1]!));
        if (n === undefined) return fault(404, `Node ${hb[1]} could not be found.`, v);
        const refuse = (msg: string): void => {
          n.refusals.push(msg);
          fault(400, msg, v);
        };
        const cb = b['callback_url'];
        const ca = b['agent_verify_ca'];
        if (ca !== undefined && !atLeast(v, 68))
          return refuse('Field "agent_verify_ca" not recognised in this version');
        if (typeof cb !== 'string' || !/^https?:\/\//.test(cb))
          return refuse('An issue with the supplied "callback_url" has been detected.');
        if (n.agentUrl !== undefined && n.agentUrl !== cb)
          return refuse('Detected change in ramdisk provided "callback_url"');
        if (b['agent_token'] === undefined) return refuse('Agent token is required for heartbeat processing.');
        if (b['agent_token'] !== n.token) return refuse('Invalid or missing agent token received.');
        if (typeof ca === 'string' && n.agentVerifyCa !== undefined && n.agentVerifyCa.trim() !== ca.trim())
          return refuse('Detected change in ramdisk provided "agent_verify_ca"');
        n.agentUrl = cb;
        if (typeof ca === 'string') n.agentVerifyCa = ca;
        n.heartbeats++;
        fixture.onHeartbeat?.(n);
        if (fixture.heartbeatDelayMs > 0) await new Promise((r) => setTimeout(r, fixture.heartbeatDelayMs));
        return send(202, undefined, v);
      }

      if (req.method === 'POST' && u.pathname === '/v1/continue_inspection') {
        const hash = createHash('sha256');
        inspectionSoFar = 0;
        const body = await readBody(maxInspection, (c) => {
          hash.update(c);
          inspectionSoFar += c.length;
        });
        if (body === 'too-large') return fault(413, 'Request Entity Too Large', v);
        let data: { inventory?: { interfaces?: { mac_address?: unknown }[] } };
        try {
          data = JSON.parse(body.toString('utf8')) as typeof data;
        } catch {
          return fault(400, 'Invalid JSON', v);
        }
        const ifaces = data.inventory?.interfaces;
        if (!Array.isArray(ifaces) || ifaces.length === 0 || ifaces.some((i) => typeof i.mac_address !== 'string'))
          return fault(400, "'interfaces' is a required property", v);
        const uuid = u.searchParams.get('node_uuid');
        const n = uuid !== null ? nodes.get(uuid) : byMac(ifaces.map((i) => i.mac_address as string));
        if (n === undefined) return fault(404, 'Not found', v);
        n.inspection = { bytes: body.length, sha256: hash.digest('hex') };
        if (atLeast(v, 84)) {
          if (n.token === undefined) n.token = randomBytes(24).toString('base64url');
          const token = n.tokenHandedOut ? '******' : n.token;
          n.tokenHandedOut = true;
          return send(202, { node: { uuid: n.uuid }, config: { agent_token: token, agent_token_required: true } }, v);
        }
        return send(202, { uuid: n.uuid }, v);
      }
      // Drain whatever came, then refuse: a proxy must never have sent it.
      req.resume();
      fault(404, 'The resource could not be found.', v);
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  const agentCall = async (
    uuid: string,
    method: 'GET' | 'POST',
    pathAndQuery: string,
    body?: string,
  ): Promise<AgentCallResult> => {
    const n = fixture.node(uuid);
    if (n.agentUrl === undefined)
      throw Object.assign(new Error('Agent driver requires agent_url in driver_internal_info'), {
        code: 'AGENT_CONNECTION_FAILED',
      });
    // requests with verify=<path>: that CA file only, host name checked
    const dispatcher = new Agent({
      connect: n.agentUrl.startsWith('https:') ? { ca: n.agentVerifyCa, rejectUnauthorized: true } : undefined,
    });
    try {
      const res = await request(`${n.agentUrl}/v1/commands/${pathAndQuery}`, {
        method,
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await res.body.text();
      return { status: res.statusCode, text, json: <T>() => JSON.parse(text) as T };
    } finally {
      await dispatcher.close();
    }
  };

  const fixture: IronicFixture = {
    url: `http://127.0.0.1:${port}`,
    requests,
    onHeartbeat: undefined,
    heartbeatDelayMs: 0,
    node(uuid) {
      const n = nodes.get(uuid);
      if (n === undefined) throw new Error(`no node ${uuid}`);
      return n;
    },
    reboot(uuid, ro = {}) {
      const n = fixture.node(uuid);
      n.agentUrl = undefined;
      n.agentVerifyCa = undefined;
      if (ro.keepToken === true) return;
      n.token = undefined;
      n.tokenHandedOut = false;
    },
    inspectionBytesSoFar: () => inspectionSoFar,
    runCommand(uuid, name, params, wait) {
      const token = fixture.node(uuid).token ?? '';
      return agentCall(
        uuid,
        'POST',
        `?wait=${wait ? 'true' : 'false'}&agent_token=${encodeURIComponent(token)}`,
        JSON.stringify({ name, params }),
      );
    },
    commandsStatus(uuid) {
      const token = fixture.node(uuid).token ?? '';
      return agentCall(uuid, 'GET', `?agent_token=${encodeURIComponent(token)}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return fixture;
}
