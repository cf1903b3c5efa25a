/**
 * Loads the configuration once: defaults < YAML file < environment < flags, then `$(VAR)`
 * expansion, schema validation, derived defaults and cross-checks. Every problem is reported by
 * key in one list; the result is deeply frozen.
 */
import { availableParallelism } from 'node:os';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type ParsedConfig } from './schema.js';
import { FLAGS, envValues, parseArgs } from './flags.js';
import { expandDeep } from './expand.js';
import { formatIpv6, inSubnet6, isLinkLocal6, parseIpv6Cidr, type Ipv6Cidr } from '../net/ipv6.js';
import { parseHostEntry, splitHostsFile, type StaticHost } from '../leases/host-list.js';
import { formatIpv4, inSubnet, parseIpv4Cidr, type Ipv4Cidr } from '../net/ipv4.js';
import { findIgnoredKernelParam } from '../boot/kernel-params.js';
import { formatListenAddress, type ListenAddress } from '../net/listen-address.js';

export interface Config {
  readonly dhcp: Omit<ParsedConfig['dhcp'], 'serverIP'> & {
    readonly serverIp: Ipv4Cidr;
  };
  /** DHCPv6 and boot over IPv6; undefined when off. */
  readonly dhcp6: Dhcp6Config | undefined;
  readonly tftp: Omit<ParsedConfig['tftp'], 'listen' | 'listen6'> & {
    readonly listen: ListenAddress | undefined;
    /** TFTP over IPv6 (with DHCPv6 on, unless switched off). */
    readonly listen6: ListenAddress | undefined;
  };
  readonly http: Omit<ParsedConfig['http'], 'listen' | 'advertiseUrl' | 'imageListen' | 'imageAdvertiseUrl'> & {
    readonly listen: ListenAddress;
    readonly advertiseUrl: string;
    /** Where the image worker listens; undefined = the image proxy runs in-process on `listen`. */
    readonly imageListen: ListenAddress | undefined;
    /** Base URL of images in scripts and rewritten Ironic configs. */
    readonly imageAdvertiseUrl: string;
  };
  readonly proxy: Omit<ParsedConfig['proxy'], 'callbackAdvertiseUrl' | 'apiAdvertiseUrl' | 'callbackListen'> & {
    readonly callbackListen: ListenAddress | undefined;
    readonly callbackAdvertiseUrl: string;
    readonly apiAdvertiseUrl: string;
  };
  readonly sources: ParsedConfig['sources'];
  readonly inspector: ParsedConfig['inspector'];
  readonly installer: ParsedConfig['installer'];
  readonly secureBoot: ParsedConfig['secureBoot'];
  readonly log: ParsedConfig['log'];
  readonly routerAdvertisements: ParsedConfig['routerAdvertisements'];
  /** Leader election among replicas, when leaderElection.id is set (times in milliseconds). */
  readonly leaderElection:
    | {
        readonly id: string;
        readonly namespace: string;
        readonly leaseDurationMs: number;
        readonly renewDeadlineMs: number;
        readonly retryPeriodMs: number;
      }
    | undefined;
  /** The Kubernetes node this runs on (NODE_NAME, from the downward API): the boot Events' source host. */
  readonly nodeName: string | undefined;
}

/** DHCPv6 settings, resolved; `urls` are the advertise URLs as hosts booting over IPv6 reach them. */
export interface Dhcp6Config extends Omit<ParsedConfig['dhcp6'], 'enabled' | 'serverIP'> {
  readonly serverIp: Ipv6Cidr;
  readonly urls: {
    readonly advertiseUrl: string;
    readonly imageAdvertiseUrl: string;
    readonly apiAdvertiseUrl: string;
  };
}

export interface LoadInput {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => string;
  /** The IPv4 addresses (with prefixes) of this machine, for `serverIP: auto`. */
  readonly localAddresses: () => readonly Ipv4Cidr[];
  /** Its global IPv6 addresses, for `dhcp6.serverIP: auto`. Default none. */
  readonly localAddresses6?: () => readonly Ipv6Cidr[];
}

export type LoadResult =
  | { readonly kind: 'config'; readonly config: Config; readonly configFile: string | undefined }
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'invalid'; readonly errors: readonly string[] };

export function loadConfig(input: LoadInput): LoadResult {
  const errors: string[] = [];
  const args = parseArgs(input.argv);
  errors.push(...args.errors);
  if (args.values.get('help') === true) return { kind: 'help' };
  if (args.values.get('version') === true) return { kind: 'version' };

  const raw: Record<string, unknown> = {};
  const configFile = (args.values.get('config') as string | undefined) ?? input.env.METALBOOT_CONFIG;
  if (configFile !== undefined) {
    try {
      const doc: unknown = parseYaml(input.readFile(configFile));
      if (doc !== null && doc !== undefined) {
        if (typeof doc !== 'object' || Array.isArray(doc))
          errors.push(`${configFile}: the top level must be a mapping`);
        else Object.assign(raw, doc);
      }
    } catch (err) {
      errors.push(`${configFile}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  for (const layer of [envValues(input.env), args.values]) {
    for (const spec of FLAGS) {
      const v = layer.get(spec.flag);
      if (v === undefined || spec.key === undefined) continue;
      setPath(raw, spec.key, v);
    }
  }

  const parsed = configSchema.safeParse(expandDeep(raw, input.env));
  if (!parsed.success) {
    errors.push(...formatIssues(parsed.error.issues));
    return { kind: 'invalid', errors };
  }
  const resolved = resolve(parsed.data, input, errors);
  if (errors.length > 0 || resolved === undefined) return { kind: 'invalid', errors };
  return { kind: 'config', config: deepFreeze(resolved), configFile };
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const key = i.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    if (i.code === 'unrecognized_keys')
      return `${key ? `${key}: ` : ''}unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${key}: ${i.message}`;
  });
}

function resolve(c: ParsedConfig, input: LoadInput, errors: string[]): Config | undefined {
  let serverIp: Ipv4Cidr | undefined;
  if (c.dhcp.serverIP === 'auto') {
    serverIp = input.localAddresses()[0];
    // An IPv6-only network (DHCPv4 off, DHCPv6 on) needs no IPv4 address: loopback stands in,
    // so the IPv4 URLs nobody is given stay local and the IPv6 ones are made from them.
    const ipv6Only = !c.dhcp.enabled && (c.dhcp6.enabled ?? c.dhcp6.serverIP !== undefined);
    if (serverIp === undefined && ipv6Only) serverIp = { address: parseIpv4Cidr('127.0.0.1/8')!.address, prefix: 8 };
    if (serverIp === undefined)
      errors.push('dhcp.serverIP: "auto" found no non-loopback IPv4 address; set --server-ip');
  } else serverIp = c.dhcp.serverIP;
  if (serverIp === undefined) return undefined;
  const ip = formatIpv4(serverIp.address);

  const staticHosts: StaticHost[] = [...c.dhcp.hosts];
  c.dhcp.hostsFiles.forEach((file, i) => {
    let text: string;
    try {
      text = input.readFile(file);
    } catch (err) {
      errors.push(
        `dhcp.hostsFiles[${i}]: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
      return;
    }
    for (const { line, entry } of splitHostsFile(text)) {
      const r = parseHostEntry(entry);
      if (r.ok) staticHosts.push(r.host);
      else errors.push(`dhcp.hostsFiles[${i}]: ${file} line ${line}: ${r.error}`);
    }
  });
  checkStaticHosts(staticHosts, errors);

  c.dhcp.ranges.forEach((r, i) => {
    const key = `dhcp.ranges[${i}]`;
    if (!inSubnet(r.start, serverIp) || !inSubnet(r.end, serverIp)) {
      errors.push(
        `${key}: ${formatIpv4(r.start)}-${formatIpv4(r.end)} is not inside the server's subnet ${ip}/${serverIp.prefix}`,
      );
    }
    if (serverIp.address >= r.start && serverIp.address <= r.end)
      errors.push(`${key}: contains the server's own address ${ip}`);
    c.dhcp.ranges.forEach((o, j) => {
      if (j > i && r.start <= o.end && o.start <= r.end)
        errors.push(`${key}: overlaps dhcp.ranges[${j}] (${formatIpv4(o.start)}-${formatIpv4(o.end)})`);
    });
  });
  // With leader election the replicas keep range leases in the Kubernetes API instead.
  if (c.dhcp.ranges.length > 0 && c.dhcp.leaseFile === undefined && c.leaderElection.id === undefined) {
    errors.push(
      'dhcp.leaseFile: required with dhcp.ranges (or --leader-election-id: leases in the Kubernetes API), so that a restart never hands one address to two hosts',
    );
  }

  for (const [key, params] of [
    ['inspector.extraKernelParams', c.inspector.extraKernelParams],
    ['installer.extraKernelParams', c.installer.extraKernelParams],
  ] as const) {
    params.forEach((p, i) => {
      const bad = findIgnoredKernelParam(p);
      if (bad !== undefined) errors.push(`${key}[${i}]: "${p}" ${bad}`);
    });
  }
  if ((c.proxy.tlsCertFile === undefined) !== (c.proxy.tlsKeyFile === undefined)) {
    errors.push('proxy.tlsCertFile: tlsCertFile and tlsKeyFile must be set together');
  }

  const v6 = resolveDhcp6(c, input, errors);
  const v6ip = v6 === undefined ? undefined : formatIpv6(v6.address);
  // With DHCPv6 on, HTTP listeners default to [::] (a dual-stack socket: both families).
  const any = v6 === undefined ? '0.0.0.0' : '::';
  const httpListen = c.http.listen ?? { host: any, port: 8080 };
  const callbackListen =
    c.proxy.callbackListen === undefined ? { host: any, port: 8081 } : (c.proxy.callbackListen ?? undefined);

  // tftp.listen: absent → the server IP on port 69; "" (null) → TFTP switched off.
  const tftpListen = c.tftp.listen === undefined ? { host: ip, port: 69 } : (c.tftp.listen ?? undefined);
  const tftpListen6 =
    v6ip === undefined
      ? undefined
      : c.tftp.listen6 === undefined
        ? { host: v6ip, port: 69 }
        : (c.tftp.listen6 ?? undefined);
  const httpPort = httpListen.port;
  const advertiseUrl = c.http.advertiseUrl ?? `http://${ip}:${httpPort}`;
  const imageListen = c.http.imageListen ?? undefined;
  // Port 0 is no overlap: each listener binds a free port of its own (and advertises it).
  if (
    imageListen !== undefined &&
    imageListen.port !== 0 &&
    imageListen.port === httpPort &&
    (imageListen.host === httpListen.host || isWildcard(imageListen.host) || isWildcard(httpListen.host))
  ) {
    errors.push(
      `http.imageListen: ${formatListenAddress(imageListen)} overlaps http.listen ${formatListenAddress(httpListen)}; give the image worker a port of its own`,
    );
  }
  // The worker runs only when there is something to proxy (Ironic's HTTP URL); without it, images
  // keep the HTTP advertise URL, so scripts never point at a port nothing listens on.
  const imageWorker = imageListen !== undefined && c.proxy.ironicHttpUrl !== undefined;
  const imageAdvertiseUrl =
    c.http.imageAdvertiseUrl ?? (imageWorker ? `http://${ip}:${imageListen.port}` : advertiseUrl);
  const { serverIP: _unused, ...dhcpRest } = c.dhcp;
  const apiAdvertiseUrl = c.proxy.apiAdvertiseUrl ?? advertiseUrl;
  const { enabled: _on, serverIP: _v6, ...dhcp6Rest } = c.dhcp6;
  const dhcp6: Dhcp6Config | undefined =
    v6 === undefined
      ? undefined
      : {
          ...dhcp6Rest,
          serverIp: v6,
          urls: {
            advertiseUrl: ipv6Url(advertiseUrl, ip, v6ip!),
            imageAdvertiseUrl: ipv6Url(imageAdvertiseUrl, ip, v6ip!),
            apiAdvertiseUrl: ipv6Url(apiAdvertiseUrl, ip, v6ip!),
          },
        };
  return {
    dhcp: { ...dhcpRest, serverIp },
    dhcp6,
    tftp: { ...c.tftp, listen: tftpListen, listen6: tftpListen6 },
    http: {
      ...c.http,
      listen: httpListen,
      advertiseUrl,
      imageListen,
      imageAdvertiseUrl,
      // One core stays with the main process (DHCP, TFTP, scripts).
      imageWorkers: c.http.imageWorkers === 0 ? Math.max(1, availableParallelism() - 1) : c.http.imageWorkers,
    },
    proxy: {
      ...c.proxy,
      callbackListen,
      callbackAdvertiseUrl: c.proxy.callbackAdvertiseUrl ?? `http://${ip}:${callbackListen?.port ?? 8081}`,
      apiAdvertiseUrl,
    },
    sources: c.sources,
    leaderElection: resolveLeaderElection(c, input, errors),
    nodeName: input.env['NODE_NAME'] || undefined,
    inspector: c.inspector,
    installer: c.installer,
    secureBoot: c.secureBoot,
    log: c.log,
    routerAdvertisements: c.routerAdvertisements,
  };
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * The URL a host booting over IPv6 uses for `url`: the same URL with the server's IPv4 address
 * (the default advertise URLs) replaced by its bracketed IPv6 address. A URL naming anything
 * else (a DNS name, a Service address) is kept: it is the operator's to make reachable. Pure.
 */
export function ipv6Url(url: string, ipv4: string, ipv6: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.hostname !== ipv4) return url;
  const at = url.indexOf(ipv4, url.indexOf('//') + 2);
  return `${url.slice(0, at)}[${ipv6}]${url.slice(at + ipv4.length)}`;
}

/** dhcp6: on when enabled, or when serverIP is set and enabled is not false; its ranges and lease file checked. */
function resolveDhcp6(c: ParsedConfig, input: LoadInput, errors: string[]): Ipv6Cidr | undefined {
  const d = c.dhcp6;
  const on = d.enabled ?? d.serverIP !== undefined;
  if (!on) return undefined;
  let server: Ipv6Cidr | undefined;
  if (d.serverIP === undefined || d.serverIP === 'auto') {
    server = input.localAddresses6?.()[0];
    if (server === undefined)
      errors.push('dhcp6.serverIP: no global IPv6 address found on this host; set --dhcp6-server-ip');
  } else server = d.serverIP;
  if (server === undefined) return undefined;
  const text = `${formatIpv6(server.address)}/${server.prefix}`;
  d.ranges.forEach((r, i) => {
    const key = `dhcp6.ranges[${i}]`;
    if (!inSubnet6(r.start, server) || !inSubnet6(r.end, server))
      errors.push(`${key}: ${formatIpv6(r.start)}-${formatIpv6(r.end)} is not inside the server's subnet ${text}`);
    if (server.address >= r.start && server.address <= r.end)
      errors.push(`${key}: contains the server's own address ${formatIpv6(server.address)}`);
    d.ranges.forEach((o, j) => {
      if (j > i && r.start <= o.end && o.start <= r.end)
        errors.push(`${key}: overlaps dhcp6.ranges[${j}] (${formatIpv6(o.start)}-${formatIpv6(o.end)})`);
    });
  });
  if (d.ranges.length > 0 && d.leaseFile === undefined && c.leaderElection.id === undefined)
    errors.push(
      'dhcp6.leaseFile: required with dhcp6.ranges (or --leader-election-id: leases in the Kubernetes API), so that a restart never hands one address to two hosts',
    );
  if (d.leaseFile !== undefined && d.leaseFile === c.dhcp.leaseFile)
    errors.push('dhcp6.leaseFile: must not be dhcp.leaseFile (each family keeps its own journal)');
  return server;
}

/** Where a pod's service account says which namespace it runs in. */
export const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function resolveLeaderElection(c: ParsedConfig, input: LoadInput, errors: string[]): Config['leaderElection'] {
  const le = c.leaderElection;
  if (le.id === undefined) return undefined;
  const before = errors.length;
  if (le.renewDeadlineSeconds >= le.leaseDurationSeconds)
    errors.push(
      `leaderElection.renewDeadlineSeconds: ${le.renewDeadlineSeconds} must be shorter than leaseDurationSeconds (${le.leaseDurationSeconds})`,
    );
  if (le.retryPeriodSeconds >= le.renewDeadlineSeconds)
    errors.push(
      `leaderElection.retryPeriodSeconds: ${le.retryPeriodSeconds} must be shorter than renewDeadlineSeconds (${le.renewDeadlineSeconds})`,
    );
  // The same cluster access as sources.kube: a kubeconfig file, or the pod's service account.
  const kubeconfig = c.sources.kube.kubeconfig;
  const inCluster = Boolean(input.env['KUBERNETES_SERVICE_HOST']) && Boolean(input.env['KUBERNETES_SERVICE_PORT']);
  if ((kubeconfig === undefined || kubeconfig === '') && !inCluster)
    errors.push(
      'leaderElection.id: needs a cluster: pass --kubeconfig, or run in a pod (KUBERNETES_SERVICE_HOST/PORT are not set)',
    );
  if (errors.length > before) return undefined;
  return {
    id: le.id,
    namespace: le.namespace ?? podNamespace(input) ?? c.sources.kube.namespace ?? 'default',
    leaseDurationMs: le.leaseDurationSeconds * 1000,
    renewDeadlineMs: le.renewDeadlineSeconds * 1000,
    retryPeriodMs: le.retryPeriodSeconds * 1000,
  };
}

function podNamespace(input: LoadInput): string | undefined {
  try {
    const ns = input.readFile(POD_NAMESPACE_FILE).trim();
    return ns === '' ? undefined : ns;
  } catch {
    return undefined;
  }
}

function checkStaticHosts(hosts: readonly StaticHost[], errors: string[]): void {
  const byMac = new Map<string, StaticHost>();
  const byIp = new Map<number | bigint, StaticHost>();
  const text = (h: StaticHost) =>
    [h.ip === undefined ? undefined : formatIpv4(h.ip), h.ip6 === undefined ? undefined : formatIpv6(h.ip6)]
      .filter((t) => t !== undefined)
      .join(' and ');
  for (const h of hosts) {
    const m = byMac.get(h.mac);
    if (m !== undefined && (m.ip !== h.ip || m.ip6 !== h.ip6))
      errors.push(`dhcp.hosts: ${h.mac} is listed twice, with ${text(m)} and ${text(h)}`);
    for (const ip of [h.ip, h.ip6]) {
      if (ip === undefined) continue;
      const o = byIp.get(ip);
      if (o !== undefined && o.mac !== h.mac)
        errors.push(
          `dhcp.hosts: ${typeof ip === 'bigint' ? formatIpv6(ip) : formatIpv4(ip)} is given to both ${o.mac} and ${h.mac}`,
        );
      byIp.set(ip, h);
    }
    byMac.set(h.mac, h);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Parses `ip addr`-style CIDRs of os.networkInterfaces() entries (for `auto`). */
export function cidrsOf(interfaces: NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>): Ipv4Cidr[] {
  const out: Ipv4Cidr[] = [];
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal || a.cidr === null) continue;
      const c = parseIpv4Cidr(a.cidr);
      if (c !== undefined) out.push(c);
    }
  }
  return out;
}

/** The global IPv6 addresses (with prefixes) of `os.networkInterfaces()`: not loopback, not link-local. */
export function cidrs6Of(interfaces: NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>): Ipv6Cidr[] {
  const out: Ipv6Cidr[] = [];
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv6' || a.internal || a.cidr === null) continue;
      const c = parseIpv6Cidr(a.cidr);
      if (c !== undefined && !isLinkLocal6(c.address)) out.push(c);
    }
  }
  return out;
}
