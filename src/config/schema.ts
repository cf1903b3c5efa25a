/**
 * The one configuration schema of metalboot. Its shape mirrors the Helm values (dhcp, tftp,
 * http, proxy, sources, inspector, installer, log); the YAML file, the environment and the flags
 * all fill this one shape, which is validated once (every problem reported by key) and frozen.
 */
import { z } from 'zod';
import { parseIpv4, parseIpv4Cidr, type Ipv4, type Ipv4Cidr } from '../net/ipv4.js';
import { parseListenAddress, type ListenAddress } from '../net/listen-address.js';
import { parseHostEntry, splitHostList, type StaticHost } from '../leases/host-list.js';
import { parseRange, parseRange6, type DhcpRange, type DhcpRange6 } from '../leases/range.js';
import { parseIpv6, parseIpv6Cidr, type Ipv6, type Ipv6Cidr } from '../net/ipv6.js';
import { unresolvedRefs } from './expand.js';
import { DEFAULT_BOOT_FILES, DEFAULT_FILE_ALIASES } from '../boot/boot-files.js';
import { DEFAULT_SECURE_BOOT_FILES } from '../boot/secure-boot.js';

const DEFAULT_LEASE_SECONDS = 3600;

/** One architecture's signed shim and second stage (Debian's paths by default). */
function secureBootFiles(cpu: keyof typeof DEFAULT_SECURE_BOOT_FILES) {
  return z
    .strictObject({
      shim: z.string().prefault(DEFAULT_SECURE_BOOT_FILES[cpu].shim),
      secondStage: z.string().prefault(DEFAULT_SECURE_BOOT_FILES[cpu].secondStage),
    })
    .prefault({});
}

function withEnvHint(value: string, message: string): string {
  const refs = unresolvedRefs(value);
  return refs.length === 0 ? message : `${message} (environment variable ${refs.join(', ')} is not set)`;
}

const ipv4 = z.string().transform((s, ctx): Ipv4 => {
  const ip = parseIpv4(s);
  if (ip === undefined) {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not an IPv4 address`) });
    return z.NEVER;
  }
  return ip;
});

/** A comma list or a YAML list of IPv4 addresses. */
const ipv4List = z.union([z.string(), z.array(z.string())]).transform((v, ctx): Ipv4[] => {
  const items = (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const out: Ipv4[] = [];
  for (const s of items) {
    const ip = parseIpv4(s);
    if (ip === undefined) ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not an IPv4 address`) });
    else out.push(ip);
  }
  return out;
});

const listen = z.string().transform((s, ctx): ListenAddress => {
  const a = parseListenAddress(s);
  if (a === undefined) {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not ADDR:PORT`) });
    return z.NEVER;
  }
  return a;
});

/** ADDR:PORT, or "" for a service that is switched off (null). */
const listenOrOff = z.string().transform((s, ctx): ListenAddress | null => {
  if (s.trim() === '') return null;
  const a = parseListenAddress(s);
  if (a === undefined) {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not ADDR:PORT (or "" to disable)`) });
    return z.NEVER;
  }
  return a;
});

const url = z.string().transform((s, ctx): string => {
  try {
    const u = new URL(s);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    // The normalised form: no spaces or other characters iPXE or a kernel command line would split.
    return u.href.replace(/\/+$/, '');
  } catch {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not an http(s) URL`) });
    return z.NEVER;
  }
});

const stringList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).filter((s) => s !== ''));

const serverIp = z.string().transform((s, ctx): Ipv4Cidr | 'auto' => {
  if (s.trim() === 'auto') return 'auto';
  const c = parseIpv4Cidr(s, 24);
  if (c === undefined) {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not IP[/prefix] or "auto"`) });
    return z.NEVER;
  }
  return c;
});

const hostEntries = z
  .union([
    z.string(),
    z.array(
      z.union([z.string(), z.strictObject({ mac: z.string(), ip: z.string(), hostname: z.string().optional() })]),
    ),
  ])
  .transform((v, ctx): StaticHost[] => {
    const entries =
      typeof v === 'string'
        ? splitHostList(v)
        : v.map((e) => (typeof e === 'string' ? e : [e.mac, e.ip, e.hostname ?? ''].join(',')));
    const out: StaticHost[] = [];
    entries.forEach((entry, i) => {
      const r = parseHostEntry(entry);
      if (r.ok) out.push(r.host);
      else ctx.addIssue({ code: 'custom', message: `entry ${i + 1}: ${r.error}`, path: [i] });
    });
    return out;
  });

const ranges = z.union([z.string(), z.array(z.string())]).transform((v, ctx): DhcpRange[] => {
  const out: DhcpRange[] = [];
  (Array.isArray(v) ? v : [v])
    .filter((s) => s.trim() !== '')
    .forEach((s, i) => {
      const r = parseRange(s, DEFAULT_LEASE_SECONDS);
      if (r.ok) out.push(r.range);
      else ctx.addIssue({ code: 'custom', message: r.error, path: [i] });
    });
  return out;
});

/** A comma list or a YAML list of IPv6 addresses. */
const ipv6List = z.union([z.string(), z.array(z.string())]).transform((v, ctx): Ipv6[] => {
  const items = (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const out: Ipv6[] = [];
  for (const s of items) {
    const ip = parseIpv6(s);
    if (ip === undefined) ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not an IPv6 address`) });
    else out.push(ip);
  }
  return out;
});

const serverIp6 = z.string().transform((s, ctx): Ipv6Cidr | 'auto' => {
  if (s.trim() === 'auto') return 'auto';
  const c = parseIpv6Cidr(s, 64);
  if (c === undefined) {
    ctx.addIssue({ code: 'custom', message: withEnvHint(s, `"${s}" is not IPv6[/prefix] or "auto"`) });
    return z.NEVER;
  }
  return c;
});

const ranges6 = z.union([z.string(), z.array(z.string())]).transform((v, ctx): DhcpRange6[] => {
  const out: DhcpRange6[] = [];
  (Array.isArray(v) ? v : [v])
    .filter((s) => s.trim() !== '')
    .forEach((s, i) => {
      const r = parseRange6(s, DEFAULT_LEASE_SECONDS);
      if (r.ok) out.push(r.range);
      else ctx.addIssue({ code: 'custom', message: r.error, path: [i] });
    });
  return out;
});

const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const domainList = stringList.superRefine((list, ctx) => {
  list.forEach((d, i) => {
    if (!DNS_NAME.test(d)) ctx.addIssue({ code: 'custom', message: `"${d}" is not a domain name`, path: [i] });
  });
});

const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name (1-15 of A-Z a-z 0-9 _ . -)');

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const KERNEL_PARAM = /^[A-Za-z0-9_.:/-]+(=[^\s"]*)?$/;
const kernelParams = stringList.superRefine((list, ctx) => {
  list.forEach((p, i) => {
    if (!KERNEL_PARAM.test(p))
      ctx.addIssue({
        code: 'custom',
        message: `"${p}" is not a single kernel parameter (NAME or NAME=VALUE, no spaces or quotes)`,
        path: [i],
      });
  });
});

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false'])]).transform((v) => v === true || v === 'true');

export const configSchema = z.strictObject({
  dhcp: z
    .strictObject({
      /** The provisioning IP of this server, with its prefix; `auto` picks the first non-loopback IPv4. */
      serverIP: serverIp.prefault('auto'),
      listen: listen.prefault('0.0.0.0:67'),
      /**
       * The address clients see as the server (option 54, next-server, option 66) when it is not
       * the server IP: a Service or load-balancer address in front of several replicas.
       */
      advertiseIP: ipv4.optional(),
      /** UDP port replies to clients go to (68); only tests change it. Relays get the listen port. */
      clientPort: int(1, 65535).prefault(68),
      /** false switches the DHCP service off (TFTP/HTTP only, e.g. behind another DHCP server). */
      enabled: bool.prefault(true),
      hosts: hostEntries.prefault([]),
      hostsFiles: stringList.prefault([]),
      ranges: ranges.prefault([]),
      gateway: ipv4.optional(),
      dns: ipv4List.prefault([]),
      ntp: ipv4List.prefault([]),
      domainName: z.string().optional(),
      leaseSeconds: int(60, 0xfffffffe).prefault(DEFAULT_LEASE_SECONDS),
      leaseFile: z.string().optional(),
      /** Boot-file key (bios, uefi-x86_64, uefi-arm64, …) → file name given in the DHCP answer. */
      bootFiles: z.record(z.string(), z.string()).prefault({ ...DEFAULT_BOOT_FILES }),
    })
    .prefault({}),
  /** DHCPv6 and boot over IPv6 (docs/decisions/0012-ipv6-provisioning.md). */
  dhcp6: z
    .strictObject({
      /** Default: on when serverIP is set. */
      enabled: bool.optional(),
      /** The server's IPv6 address and prefix (default /64); `auto`: the first global IPv6 address of this host. */
      serverIP: serverIp6.optional(),
      listen: listen.prefault('[::]:547'),
      /** The interface whose link DHCPv6 serves (ff02::1:2 is joined there). Default: the one that holds serverIP. */
      interface: ifname.optional(),
      ranges: ranges6.prefault([]),
      dns: ipv6List.prefault([]),
      ntp: ipv6List.prefault([]),
      domainSearch: domainList.prefault([]),
      leaseSeconds: int(60, 0xfffffffe).prefault(DEFAULT_LEASE_SECONDS),
      leaseFile: z.string().optional(),
      /** Answer a Solicit that asks for Rapid Commit with a Reply at once (two messages instead of four). */
      rapidCommit: bool.prefault(true),
    })
    .prefault({}),
  tftp: z
    .strictObject({
      /** "" disables TFTP. Default: the server IP, port 69. */
      listen: listenOrOff.optional(),
      /** TFTP over IPv6; "" disables it. Default with DHCPv6 on: the server's IPv6 address, port 69. */
      listen6: listenOrOff.optional(),
      root: z.string().prefault('/usr/lib/ipxe'),
      singlePort: bool.prefault(false),
      aliases: z.record(z.string(), z.string()).prefault({ ...DEFAULT_FILE_ALIASES }),
      /** Directories that symlinks in the root may point into (Debian links ipxe.efi to /boot). */
      extraRoots: stringList.prefault(['/boot']),
      maxBlksize: int(512, 65464).prefault(1468),
      maxWindowsize: int(1, 256).prefault(64),
      maxTransfers: int(1, 100_000).prefault(1000),
      maxPerClient: int(1, 1000).prefault(8),
      timeoutMs: int(100, 60_000).prefault(1000),
      retries: int(1, 20).prefault(5),
      maxTransferMs: int(1000, 86_400_000).prefault(300_000),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** Default 0.0.0.0:8080, or [::]:8080 (both families) with DHCPv6 on. */
      listen: listen.optional(),
      /** The URL booting hosts use to reach this server. Default: http://<server-ip>:<http-port>. */
      advertiseUrl: url.optional(),
      templatesDir: z.string().optional(),
      /**
       * Serve the image proxy from worker processes on a port of its own, so streaming images never
       * delays DHCP, TFTP or scripts on the main event loop. "" (default): in-process on `listen`.
       */
      imageListen: listenOrOff.prefault(''),
      /** Image worker processes sharing `imageListen`. 0 (default): one per core but one, at least 1. */
      imageWorkers: z.coerce.number().int().min(0).max(64).prefault(0),
      /** The URL booting hosts fetch images from. Default: http://<server-ip>:<image-port>. */
      imageAdvertiseUrl: url.optional(),
      imageCacheDir: z.string().optional(),
      imageCacheMaxBytes: z.coerce
        .number()
        .int()
        .min(0)
        .prefault(20 * 2 ** 30),
    })
    .prefault({}),
  proxy: z
    .strictObject({
      /** Default 0.0.0.0:8081, or [::]:8081 (both families) with DHCPv6 on; "" turns it off. */
      callbackListen: listenOrOff.optional(),
      callbackAdvertiseUrl: url.optional(),
      apiAdvertiseUrl: url.optional(),
      ironicHttpUrl: url.optional(),
      ironicApiUrl: url.optional(),
      callbackInsecureSkipVerify: bool.prefault(false),
      tlsCertFile: z.string().optional(),
      tlsKeyFile: z.string().optional(),
      stateDir: z.string().optional(),
    })
    .prefault({}),
  sources: z
    .strictObject({
      bmhFiles: stringList.prefault([]),
      annotationPrefix: z
        .string()
        .regex(/^[a-z0-9.-]+\/$/, 'must look like "example.com/" (ending with a slash)')
        .prefault('metal3.vcluster.com/'),
      kube: z
        .strictObject({
          enabled: bool.prefault(false),
          namespace: z.string().optional(),
          kubeconfig: z.string().optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  inspector: z
    .strictObject({
      collectors: z
        .string()
        .regex(/^[a-z0-9_-]+(,[a-z0-9_-]+)*$/, 'must be a comma list of collector names')
        .prefault('default,logs'),
      extraKernelParams: kernelParams.prefault([]),
      kernelPath: z.string().prefault('images/ironic-python-agent.kernel'),
      initramfsPath: z.string().prefault('images/ironic-python-agent.initramfs'),
    })
    .prefault({}),
  installer: z
    .strictObject({
      extraKernelParams: kernelParams.prefault([]),
    })
    .prefault({}),
  /**
   * UEFI Secure Boot (docs/decisions/0013-secure-boot.md): hosts on this chain get a signed shim,
   * which loads the signed second stage (GRUB, or a signed iPXE) served as grubx64.efi /
   * grubaa64.efi. A file set to "" leaves its architecture without the chain.
   */
  secureBoot: z
    .strictObject({
      /** The chain of UEFI hosts whose BareMetalHost sets no spec.bootMode and no secure-boot annotation. */
      default: bool.prefault(false),
      files: z
        .strictObject({
          x86_64: secureBootFiles('x86_64'),
          arm64: secureBootFiles('arm64'),
        })
        .prefault({}),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).prefault('info'),
    })
    .prefault({}),
  /**
   * IPv6 router advertisements that answer iPXE's router solicitation (lifetime 0, no prefix,
   * M=O=0), sent by radvd: docs/decisions/0011-router-advertisement.md.
   */
  routerAdvertisements: z
    .strictObject({
      enabled: bool.prefault(true),
      /** Default: the interface that holds dhcp.serverIP. */
      interface: z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name (1-15 of A-Z a-z 0-9 _ . -)')
        .optional(),
      /** MaxRtrAdvInterval (RFC 4861 §6.2.1): periodic advertisements at most this far apart. */
      maxIntervalSeconds: int(4, 1800).prefault(600),
      /** The radvd executable. */
      radvd: z.string().min(1).prefault('radvd'),
      /** Where radvd's configuration and pidfile go (a directory of their own is made in it). Default: the system's temporary directory. */
      runtimeDir: z.string().min(1).optional(),
    })
    .prefault({}),
  /** Replicas elect a leader through a coordination.k8s.io/v1 Lease named `id` (client-go's semantics). */
  leaderElection: z
    .strictObject({
      id: z
        .string()
        .regex(
          /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
          'must be a Lease name (lower-case letters, digits, "-" and ".", starting and ending alphanumeric)',
        )
        // 253 for a Lease name, less the longest suffix of the objects replicas share.
        .max(200)
        .optional(),
      /** Default: the pod's namespace (service account), else sources.kube.namespace, else "default". */
      namespace: z.string().min(1).optional(),
      leaseDurationSeconds: z.coerce.number().positive().max(3600).prefault(15),
      renewDeadlineSeconds: z.coerce.number().positive().max(3600).prefault(10),
      retryPeriodSeconds: z.coerce.number().positive().max(3600).prefault(2),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
