/**
 * The boot routes: /boot.ipxe (the NIC loop), /boot/<mac>.ipxe (the host's script),
 * /boot/fallback.ipxe, and /ipxe/<binary> for UEFI HTTP boot. Scripts are rendered per
 * request from the in-memory index; only the installer branch does I/O (Ironic's per-node
 * config), bounded by timeouts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { HostScriptData, IpxeScripts } from '../boot/ipxe-scripts.js';
import { chooseScript, type ScriptKind } from '../boot/script-choice.js';
import { rewriteIronicConfig } from '../boot/ironic-config.js';
import { fetchConfigText } from '../boot/http-fetch.js';
import { renderGrubConfig, type GrubConfigOptions } from '../boot/grub-configs.js';
import type { FileSource } from '../boot/ipxe-files.js';
import { macHexHyp, parseMac, type Mac } from '../net/mac.js';
import type { HostIndex } from '../leases/host-index.js';
import type { HostRecord } from '../leases/host.js';

/** A script or an iPXE binary served over HTTP. */
export interface HttpServed {
  readonly host: HostRecord | undefined;
  readonly mac: Mac | undefined;
  readonly what: 'script' | 'binary';
  readonly name: string;
  /** The client's address (scripts). */
  readonly peer?: string;
}

export interface BootRoutesOptions {
  readonly scripts: IpxeScripts;
  readonly index: HostIndex;
  readonly files: FileSource;
  /** HTTP advertise URL (scripts). */
  readonly baseUrl: string;
  /** Where images are fetched from (the image worker's URL, or baseUrl). Default baseUrl. */
  readonly imageBaseUrl?: string;
  /** API advertise URL (the API proxy IPA talks to). */
  readonly apiUrl: string;
  /**
   * The same three URLs for hosts that reach this server over IPv6 (the connection's local
   * address is IPv6): scripts served over IPv6 point at IPv6 URLs. Default: the IPv4 ones.
   */
  readonly ipv6?: { readonly baseUrl: string; readonly imageBaseUrl: string; readonly apiUrl: string };
  readonly ironicHttpUrl: string | undefined;
  readonly ironicApiUrl: string | undefined;
  readonly annotationPrefix: string;
  readonly inspector: {
    readonly collectors: string;
    readonly extraKernelParams: readonly string[];
    readonly kernelPath: string;
    readonly initramfsPath: string;
  };
  readonly installer: { readonly extraKernelParams: readonly string[] };
  readonly registry: Registry;
  /** Timeout for fetching Ironic's per-node config. Default 10 s. */
  readonly ironicTimeoutMs?: number;
  /**
   * GRUB configurations for the Secure Boot chain, also over HTTP (`/grub/<name>`, and
   * `/ipxe/grub/<name>` where a GRUB loaded from /ipxe/ looks): the same as over TFTP.
   */
  readonly grub?: GrubConfigOptions;
  /** Called when a script or binary was served (Kubernetes events). */
  readonly onServed?: (event: HttpServed) => void;
}

type RenderedScript = { kind: ScriptKind | 'retry'; text: string };

interface Urls {
  readonly baseUrl: string;
  readonly imageBaseUrl: string;
  readonly apiUrl: string;
}

/** A connection that came in over IPv6: a local IPv6 address that is not an IPv4-mapped one. */
export function overIpv6(localAddress: string | undefined): boolean {
  return localAddress?.includes(':') === true && !localAddress.startsWith('::ffff:');
}

const IRONIC_CONFIG_MAX_BYTES = 256 * 1024;

export async function bootRoutes(app: FastifyInstance, o: BootRoutesOptions): Promise<void> {
  const served = new Counter({
    name: 'metalboot_boot_scripts_total',
    help: 'iPXE scripts served, by kind',
    labelNames: ['kind'],
    registers: [o.registry],
  });
  const binaries = new Counter({
    name: 'metalboot_http_binaries_total',
    help: 'iPXE binaries served over HTTP, by result',
    labelNames: ['result'],
    registers: [o.registry],
  });
  const v4: Urls = { baseUrl: o.baseUrl, imageBaseUrl: o.imageBaseUrl ?? o.baseUrl, apiUrl: o.apiUrl };
  const v6: Urls = o.ipv6 ?? v4;
  /** The URLs for the family the client reached us by. */
  const urlsFor = (req: FastifyRequest): Urls => (overIpv6(req.socket.localAddress) ? v6 : v4);
  const initramfsName = o.inspector.initramfsPath.split('/').at(-1)!;
  const common = (urls: Urls, mac: Mac, host: HostRecord, why: string): HostScriptData => ({
    host: host.origin.name,
    mac,
    why,
    baseUrl: urls.baseUrl,
    apiUrl: urls.apiUrl,
    kernelUrl: `${urls.imageBaseUrl}/${o.inspector.kernelPath.replace(/^\/+/, '')}`,
    initramfsUrl: `${urls.imageBaseUrl}/${o.inspector.initramfsPath.replace(/^\/+/, '')}`,
    initramfsName,
  });

  const sendScript = (reply: FastifyReply, s: RenderedScript) => {
    served.inc({ kind: s.kind });
    return reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(s.text);
  };

  app.get('/boot.ipxe', async (req, reply) => {
    // No MAC here: the timing of a host's first script request goes by its address.
    o.onServed?.({ host: undefined, mac: undefined, what: 'script', name: 'boot', peer: req.ip });
    return sendScript(reply, {
      kind: 'boot' as ScriptKind,
      text: o.scripts.render('boot', { baseUrl: urlsFor(req).baseUrl }),
    });
  });

  app.get<{ Params: { name: string } }>('/boot/:name', async (req, reply) => {
    const name = req.params.name;
    if (name === 'fallback.ipxe') {
      req.log.warn(
        { peer: req.ip, macs: Object.values(req.query as Record<string, string>).filter((m) => m !== '') },
        'no host for any NIC of this machine',
      );
      return sendScript(reply, {
        kind: 'fallback' as ScriptKind,
        text: o.scripts.render('fallback', {
          baseUrl: urlsFor(req).baseUrl,
          annotationPrefix: o.annotationPrefix,
          retrySeconds: 30,
        }),
      });
    }
    const mac = name.endsWith('.ipxe') ? parseMac(name.slice(0, -5)) : undefined;
    if (mac === undefined) return reply.code(404).type('text/plain').send('not a MAC address\n');
    const found = o.index.lookup(mac);
    if (found.kind !== 'host') {
      // 404 lets boot.ipxe's NIC loop move on to the next NIC.
      req.log.info({ mac, reason: found.kind === 'conflict' ? found.reason : 'unknown-host' }, 'no script for MAC');
      return reply
        .code(404)
        .type('text/plain')
        .send(found.kind === 'conflict' ? `conflict: ${found.reason}\n` : 'no host with this MAC\n');
    }
    const script = await renderHostScript(urlsFor(req), mac, found.host, req.log);
    req.log.info({ mac, host: found.host.origin.name, script: script.kind }, 'boot script served');
    o.onServed?.({ host: found.host, mac, what: 'script', name: script.kind, peer: req.ip });
    return sendScript(reply, script);
  });

  async function renderHostScript(
    urls: Urls,
    mac: Mac,
    host: HostRecord,
    log: FastifyInstance['log'],
  ): Promise<RenderedScript> {
    const choice = chooseScript(host);
    const data = common(urls, mac, host, choice.why);
    const inspector = (why: string): RenderedScript => ({
      kind: 'inspector',
      text: o.scripts.render('inspector', {
        ...data,
        why,
        collectors: o.inspector.collectors,
        callbackUrl: `${urls.apiUrl}/v1/continue_inspection`,
        extraParams: o.inspector.extraKernelParams,
      }),
    });
    const installer = (why: string): RenderedScript => ({
      kind: 'installer',
      text: o.scripts.render('installer', { ...data, why, extraParams: o.installer.extraKernelParams }),
    });
    switch (choice.kind) {
      case 'localboot':
        return { kind: 'localboot', text: o.scripts.render('localboot', data) };
      case 'inspector':
        return inspector(choice.why);
      case 'installer':
      case 'ironic-or-inspector': {
        const fetched = await fetchIronicConfig(mac);
        if (fetched.kind === 'config') {
          return {
            kind: 'installer',
            text: rewriteIronicConfig(fetched.text, {
              ironicHttpUrl: o.ironicHttpUrl,
              ironicApiUrl: o.ironicApiUrl,
              httpUrl: urls.imageBaseUrl,
              apiUrl: urls.apiUrl,
              extraParams: o.installer.extraKernelParams,
            }),
          };
        }
        if (fetched.kind === 'error') {
          log.warn({ mac, reason: fetched.reason }, 'ironic per-node config unavailable');
          return {
            kind: 'retry',
            text: o.scripts.render('retry', {
              ...data,
              why: `Ironic per-node config unavailable: ${fetched.reason}`,
              retrySeconds: 10,
              macHexHyp: macHexHyp(mac),
            }),
          };
        }
        return choice.kind === 'installer'
          ? installer(`${choice.why}; Ironic has no per-node config, using metalboot's installer`)
          : inspector(`${choice.why}; Ironic has no per-node config`);
      }
    }
  }

  async function fetchIronicConfig(
    mac: Mac,
  ): Promise<{ kind: 'config'; text: string } | { kind: 'none' } | { kind: 'error'; reason: string }> {
    if (o.ironicHttpUrl === undefined) return { kind: 'none' };
    const r = await fetchConfigText(
      `${o.ironicHttpUrl}/pxelinux.cfg/${macHexHyp(mac)}`,
      o.ironicTimeoutMs ?? 10_000,
      IRONIC_CONFIG_MAX_BYTES,
    );
    return r.kind === 'error' && r.reason.startsWith('HTTP ')
      ? { kind: 'error', reason: `${r.reason} from Ironic` }
      : r;
  }

  // iPXE binaries for UEFI HTTP boot: the same files and table as TFTP; no redirects.
  // fastify answers HEAD from this GET route and drops the body itself, keeping Content-Length.
  const sendBinary = async (req: { params: { file: string } }, reply: FastifyReply) => {
    const r = o.files.lookup(req.params.file);
    if (r.kind !== 'file') {
      binaries.inc({ result: r.kind });
      return reply
        .code(r.kind === 'refused' ? 403 : 404)
        .type('text/plain')
        .send(r.kind === 'refused' ? `refused: ${r.reason}\n` : 'no such file\n');
    }
    binaries.inc({ result: 'served' });
    o.onServed?.({ host: undefined, mac: undefined, what: 'binary', name: r.file.name });
    reply
      .header('content-length', r.file.size)
      .header('etag', r.file.etag)
      .header('last-modified', new Date(r.file.mtimeMs).toUTCString())
      .type('application/octet-stream');
    return reply.send(r.file.data);
  };
  app.get<{ Params: { file: string } }>('/ipxe/:file', sendBinary);

  const grub = o.grub;
  if (grub !== undefined) {
    const sendGrub = async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
      const c = await renderGrubConfig(req.params.name, req.ip, grub);
      if (c === undefined) return reply.code(404).type('text/plain').send('no GRUB configuration under this name\n');
      req.log.info({ mac: c.mac, host: c.host?.origin.name, config: c.kind }, 'grub config served');
      o.onServed?.({ host: c.host, mac: c.mac, what: 'script', name: c.kind, peer: req.ip });
      served.inc({ kind: `grub-${c.kind}` });
      return reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(c.text);
    };
    app.get('/grub/:name', sendGrub);
    app.get('/ipxe/grub/:name', sendGrub);
  }
}
