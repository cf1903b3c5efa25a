/**
 * GRUB configurations for hosts on the Secure Boot chain (shim → signed GRUB): the names GRUB
 * asks for, the host each name means, and the configuration each host gets — the GRUB
 * equivalent of the iPXE scripts (inspector, installer, local boot, and a fallback that says why
 * nothing matched). Rendering is pure; the one I/O, Ironic's per-node GRUB configuration, is a
 * function the caller passes in.
 *
 * What GRUB asks for (seen in the lab, Debian's grubnetx64.efi.signed 2.06-13 loaded by shim
 * over TFTP): its prefix is `(tftp,<server>)/grub`, and it asks for `/grub/grub.cfg` and nothing
 * else (no `grub.cfg-01-<mac>` search first; before it, only its module lists). GRUB builds that search (upstream
 * grub_net_search_config_file) try `grub.cfg-01-<mac>`, then `grub.cfg-<HEXIP>` shortened one
 * digit at a time, then `grub.cfg`; all of them are answered here, in any directory.
 * A TFTP request carries no MAC: `grub.cfg` is mapped to its host by the client's address,
 * which is the host's DHCP lease.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Eta } from 'eta';
import { MetalbootError } from '../base/errors.js';
import { BUILTIN_TEMPLATES_DIR } from './ipxe-scripts.js';
import { chooseScript, type ScriptKind } from './script-choice.js';
import { parseMac, type Mac } from '../net/mac.js';
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';
import { parseIpv6, type Ipv6 } from '../net/ipv6.js';
import type { HostRecord } from '../leases/host.js';
import type { HostLookup } from '../leases/host-index.js';

export const GRUB_TEMPLATE_NAMES = ['inspector', 'installer', 'localboot', 'fallback'] as const;
export type GrubTemplateName = (typeof GRUB_TEMPLATE_NAMES)[number];

/** Which configuration a requested name asks for, or that it is no GRUB configuration name. */
export type GrubName =
  /** `grub.cfg-01-<mac>` (hardware type 1, Ethernet). */
  | { readonly kind: 'mac'; readonly mac: Mac }
  /** `grub.cfg-<8 hex digits>`: the client's full IPv4 address. */
  | { readonly kind: 'ip'; readonly ip: Ipv4 }
  /** `grub.cfg-<fewer hex digits>`: a subnet, never one host (GRUB moves on to the next name). */
  | { readonly kind: 'subnet' }
  /** `grub.cfg`: the client's address says which host. */
  | { readonly kind: 'by-peer' }
  | { readonly kind: 'not-grub' };

/** Parses a requested name (TFTP or HTTP path, any directory). Pure. */
export function parseGrubName(name: string): GrubName {
  const base = name.split('/').at(-1) ?? '';
  if (base === 'grub.cfg') return { kind: 'by-peer' };
  if (!base.startsWith('grub.cfg-')) return { kind: 'not-grub' };
  const rest = base.slice('grub.cfg-'.length);
  if (/^01-[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){5}$/.test(rest)) {
    const mac = parseMac(rest.slice(3));
    return mac === undefined ? { kind: 'not-grub' } : { kind: 'mac', mac };
  }
  if (/^[0-9A-F]{8}$/.test(rest)) {
    const ip = parseIpv4([0, 2, 4, 6].map((i) => Number.parseInt(rest.slice(i, i + 2), 16)).join('.'));
    return ip === undefined ? { kind: 'not-grub' } : { kind: 'ip', ip };
  }
  if (/^[0-9A-F]{1,7}$/.test(rest)) return { kind: 'subnet' };
  return { kind: 'not-grub' };
}

/** The names a GRUB that searches asks for, in its order, for `mac` and `ip` (tests and docs). */
export function grubSearchNames(mac: Mac, ip: Ipv4, dir = 'grub'): string[] {
  const hex = ip.toString(16).toUpperCase().padStart(8, '0');
  const names = [`grub.cfg-01-${mac.replaceAll(':', '-')}`];
  for (let n = 8; n >= 1; n--) names.push(`grub.cfg-${hex.slice(0, n)}`);
  names.push('grub.cfg');
  return names.map((n) => `${dir}/${n}`);
}

/** The host a GRUB name means, or why none. */
export type GrubTarget =
  | { readonly kind: 'host'; readonly host: HostRecord; readonly mac: Mac }
  /** No configuration under this name: GRUB goes on to its next name. */
  | { readonly kind: 'missing' }
  /** `grub.cfg` from an address that is no host's lease: the fallback configuration. */
  | { readonly kind: 'fallback'; readonly why: string };

export interface GrubHostIndex {
  lookup(mac: Mac): HostLookup;
  hostByIp(ip: Ipv4): HostRecord | undefined;
  hostByIp6(ip: Ipv6): HostRecord | undefined;
}

/** The client address as the socket reports it (`10.0.0.5`, `::ffff:10.0.0.5`, `fd00::5`). */
function peerHost(peer: string, index: GrubHostIndex): HostRecord | undefined {
  const v4 = parseIpv4(peer.startsWith('::ffff:') ? peer.slice(7) : peer);
  if (v4 !== undefined) return index.hostByIp(v4);
  const v6 = parseIpv6(peer);
  return v6 === undefined ? undefined : index.hostByIp6(v6);
}

/** Which host a GRUB name from `peer` means. Pure (reads the index). */
export function grubTarget(name: GrubName, peer: string, index: GrubHostIndex): GrubTarget {
  switch (name.kind) {
    case 'not-grub':
    case 'subnet':
      return { kind: 'missing' };
    case 'mac': {
      const found = index.lookup(name.mac);
      return found.kind === 'host' ? { kind: 'host', host: found.host, mac: name.mac } : { kind: 'missing' };
    }
    case 'ip': {
      const host = index.hostByIp(name.ip);
      return host === undefined ? { kind: 'missing' } : { kind: 'host', host, mac: host.macs[0]! };
    }
    case 'by-peer': {
      const host = peerHost(peer, index);
      if (host === undefined)
        return { kind: 'fallback', why: `no BareMetalHost or static host has the address ${peer} as its lease` };
      return { kind: 'host', host, mac: host.macs[0]! };
    }
  }
}

/** What each GRUB template is rendered with (`it.<field>`). */
export interface GrubHostData {
  readonly host: string;
  readonly mac: Mac;
  readonly why: string;
  readonly apiUrl: string;
  /** The kernel and initramfs as GRUB paths on its root, the TFTP server (`/images/…`). */
  readonly kernelPath: string;
  readonly initramfsPath: string;
}

export interface GrubTemplateData {
  readonly inspector: GrubHostData & {
    readonly collectors: string;
    readonly callbackUrl: string;
    readonly extraParams: readonly string[];
  };
  readonly installer: GrubHostData & { readonly extraParams: readonly string[] };
  readonly localboot: GrubHostData;
  readonly fallback: {
    readonly why: string;
    readonly baseUrl: string;
    readonly annotationPrefix: string;
    readonly retrySeconds: number;
  };
}

/**
 * GRUB's double-quoted strings: `\`, `"` and `$` are escaped, so a value never ends the string
 * or expands a variable; a line break or control character would start a new command and is
 * refused. Templates put every value in double quotes (kernel parameters, paths, echo text).
 */
export function grubEscape(value: unknown): string {
  const s = String(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
  if (/[\x00-\x1f\x7f]/.test(s))
    throw new MetalbootError(
      'GRUB_ERR_UNSAFE_VALUE',
      `value ${JSON.stringify(s)} contains a line break or control character`,
    );
  return s.replace(/[\\"$]/g, (c) => `\\${c}`);
}

/** The GRUB templates (`<name>.grub.cfg` beside the iPXE ones; a user directory overrides any of them). */
export class GrubTemplates {
  readonly #eta: Eta;
  readonly sources: Readonly<Record<GrubTemplateName, string>>;

  constructor(userDir: string | undefined, builtinDir = BUILTIN_TEMPLATES_DIR) {
    this.#eta = new Eta({ autoEscape: true, escapeFunction: grubEscape, autoTrim: false, useWith: false });
    const sources = {} as Record<GrubTemplateName, string>;
    for (const name of GRUB_TEMPLATE_NAMES) {
      const user = userDir === undefined ? undefined : path.join(userDir, `${name}.grub.cfg`);
      const file = user !== undefined && existsSync(user) ? user : path.join(builtinDir, `${name}.grub.cfg`);
      sources[name] = readFileSync(file, 'utf8');
      this.#eta.loadTemplate(`@${name}`, sources[name]);
    }
    this.sources = sources;
  }

  render<N extends GrubTemplateName>(name: N, data: GrubTemplateData[N]): string {
    return this.#eta.render(`@${name}`, data);
  }
}

/** Ironic's per-node GRUB configuration for a MAC, as the caller fetched it. */
export type IronicGrubConfig =
  | { readonly kind: 'config'; readonly text: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'error'; readonly reason: string };

export interface GrubConfigOptions {
  readonly templates: GrubTemplates;
  readonly index: GrubHostIndex;
  /** The HTTP advertise URL (the fallback names /debug/explain there). */
  readonly baseUrl: string;
  /** The API proxy URL IPA talks to. */
  readonly apiUrl: string;
  readonly annotationPrefix: string;
  readonly inspector: {
    readonly collectors: string;
    readonly extraKernelParams: readonly string[];
    readonly kernelPath: string;
    readonly initramfsPath: string;
  };
  readonly installer: { readonly extraKernelParams: readonly string[] };
  /** Ironic's HTTP and API URLs, rewritten in its per-node configuration. */
  readonly ironicHttpUrl: string | undefined;
  readonly ironicApiUrl: string | undefined;
  /** Ironic's per-node GRUB configuration (`grub.cfg-01-<mac>` under its HTTP root). */
  readonly fetchIronic: (mac: Mac) => Promise<IronicGrubConfig>;
}

export interface RenderedGrubConfig {
  readonly kind: ScriptKind | 'fallback' | 'retry';
  readonly text: string;
  readonly host: HostRecord | undefined;
  readonly mac: Mac | undefined;
}

/** Renders the configuration a GRUB request gets; undefined: no configuration under that name. */
export async function renderGrubConfig(
  name: string,
  peer: string,
  o: GrubConfigOptions,
): Promise<RenderedGrubConfig | undefined> {
  const target = grubTarget(parseGrubName(name), peer, o.index);
  if (target.kind === 'missing') return undefined;
  if (target.kind === 'fallback')
    return {
      kind: 'fallback',
      host: undefined,
      mac: undefined,
      text: o.templates.render('fallback', {
        why: target.why,
        baseUrl: o.baseUrl,
        annotationPrefix: o.annotationPrefix,
        retrySeconds: 30,
      }),
    };
  const { host, mac } = target;
  const choice = chooseScript(host);
  const data: GrubHostData = {
    host: host.origin.name,
    mac,
    why: choice.why,
    apiUrl: o.apiUrl,
    kernelPath: `/${o.inspector.kernelPath.replace(/^\/+/, '')}`,
    initramfsPath: `/${o.inspector.initramfsPath.replace(/^\/+/, '')}`,
  };
  const done = (kind: RenderedGrubConfig['kind'], text: string): RenderedGrubConfig => ({ kind, text, host, mac });
  const inspector = (why: string) =>
    done(
      'inspector',
      o.templates.render('inspector', {
        ...data,
        why,
        collectors: o.inspector.collectors,
        callbackUrl: `${o.apiUrl}/v1/continue_inspection`,
        extraParams: o.inspector.extraKernelParams,
      }),
    );
  switch (choice.kind) {
    case 'localboot':
      return done('localboot', o.templates.render('localboot', data));
    case 'inspector':
      return inspector(choice.why);
    case 'installer':
    case 'ironic-or-inspector': {
      const fetched = await o.fetchIronic(mac);
      if (fetched.kind === 'config')
        return done(
          'installer',
          rewriteIronicGrubConfig(fetched.text, {
            ironicHttpUrl: o.ironicHttpUrl,
            ironicApiUrl: o.ironicApiUrl,
            apiUrl: o.apiUrl,
            extraParams: o.installer.extraKernelParams,
          }),
        );
      if (fetched.kind === 'error')
        return done(
          'retry',
          o.templates.render('fallback', {
            why: `the configuration of ${host.origin.name} could not be prepared: Ironic per-node config unavailable: ${fetched.reason}`,
            baseUrl: o.baseUrl,
            annotationPrefix: o.annotationPrefix,
            retrySeconds: 10,
          }),
        );
      return choice.kind === 'installer'
        ? done(
            'installer',
            o.templates.render('installer', {
              ...data,
              why: `${choice.why}; Ironic has no per-node config, using metalboot's installer`,
              extraParams: o.installer.extraKernelParams,
            }),
          )
        : inspector(`${choice.why}; Ironic has no per-node config`);
    }
  }
}

export interface IronicGrubRewrite {
  readonly ironicHttpUrl: string | undefined;
  readonly ironicApiUrl: string | undefined;
  /** Our API proxy URL. */
  readonly apiUrl: string;
  readonly extraParams: readonly string[];
}

function replaceAllLiteral(text: string, from: string, to: string): string {
  return from === '' ? text : text.split(from).join(to);
}

/**
 * Rewrites Ironic's per-node GRUB configuration (pxe_grub_config.template, written as
 * `grub.cfg-01-<mac>`) the way rewriteIronicConfig does the iPXE one, for a host that reaches
 * nothing but metalboot and boots a GRUB that has no HTTP:
 * - `linuxefi`/`initrdefi` (a Fedora/Ubuntu patch) become `linux`/`initrd`, which every GRUB
 *   since 2.04 has and which verify the kernel through shim;
 * - a file on Ironic's HTTP server (`<ironicHttpUrl>/x`, or GRUB's `(http,<host:port>)/x`)
 *   becomes `/x` on GRUB's root, metalboot's TFTP server, which fetches it through the image proxy;
 * - every Ironic API URL and every ipa-api-url becomes the API proxy URL;
 * - the installer's extra kernel parameters are appended to each `linux` line. Pure.
 */
export function rewriteIronicGrubConfig(text: string, r: IronicGrubRewrite): string {
  let out = text;
  out = out.replace(/^(\s*)linuxefi(\s)/gm, '$1linux$2').replace(/^(\s*)initrdefi(\s)/gm, '$1initrd$2');
  if (r.ironicHttpUrl !== undefined) {
    const http = r.ironicHttpUrl.replace(/\/+$/, '');
    const authority = /^https?:\/\/([^/]+)/.exec(http)?.[1];
    const basePath = http.replace(/^https?:\/\/[^/]+/, '');
    out = out.replace(/(^|\s)(\S+)/g, (m, lead: string, word: string) => {
      let rest: string | undefined;
      if (word.startsWith(`${http}/`)) rest = word.slice(http.length);
      else if (authority !== undefined && word.startsWith(`(http,${authority})${basePath}/`))
        rest = word.slice(`(http,${authority})${basePath}`.length);
      return rest === undefined ? m : `${lead}${rest}`;
    });
  }
  if (r.ironicApiUrl !== undefined) out = replaceAllLiteral(out, r.ironicApiUrl, r.apiUrl);
  out = out.replace(/(^|\s)ipa-api-url=\S+/g, (_m, lead: string) => `${lead}ipa-api-url=${r.apiUrl}`);
  if (r.extraParams.length > 0) {
    const extra = r.extraParams.join(' ');
    out = out.replace(/^(\s*linux\s[^\n]*?)\s*$/gm, (_m, cmd: string) => `${cmd} ${extra}`);
  }
  return out;
}
