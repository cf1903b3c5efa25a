/**
 * The command-line flags: one table that drives parsing, the environment mapping
 * (`METALBOOT_<FLAG>`), `--help`, and the README reference. Each flag fills one key of the
 * configuration schema, so a flag, an environment variable and a YAML key are the same setting.
 */
export type FlagKind = 'string' | 'bool' | 'repeat';

export interface FlagSpec {
  readonly flag: string;
  /** Path in the configuration (YAML keys); undefined for flags that are not settings. */
  readonly key: readonly string[] | undefined;
  readonly kind: FlagKind;
  readonly arg: string;
  readonly help: string;
}

const F = (flag: string, key: string | undefined, kind: FlagKind, arg: string, help: string): FlagSpec => ({
  flag,
  key: key?.split('.'),
  kind,
  arg,
  help,
});

export const FLAGS: readonly FlagSpec[] = [
  F(
    'config',
    undefined,
    'string',
    'FILE',
    'YAML configuration file (same shape as the Helm values); flags and environment override it',
  ),
  F(
    'server-ip',
    'dhcp.serverIP',
    'string',
    'IP[/prefix]',
    'provisioning IP of this server (DHCP server identifier, next-server, default advertise URLs); "auto" = first non-loopback IPv4 (default)',
  ),
  F(
    'dhcp-listen',
    'dhcp.listen',
    'string',
    'ADDR:PORT',
    'DHCP address (default 0.0.0.0:67: every interface); an address of this host serves only the interface that owns it (its broadcasts through socat)',
  ),
  F(
    'dhcp-advertise-ip',
    'dhcp.advertiseIP',
    'string',
    'IP',
    'server identity given to clients (option 54, next-server) when it is not the server IP: a Service address in front of replicas behind a relay',
  ),
  F(
    'dhcp-hosts',
    'dhcp.hosts',
    'string',
    '"MAC,IP;MAC,IP"',
    'static hosts, MAC,IP[,hostname] entries separated by ";"',
  ),
  F(
    'dhcp-hosts-file',
    'dhcp.hostsFiles',
    'repeat',
    'FILE',
    'static hosts file, one MAC,IP[,hostname] per line, # comments (a dnsmasq dhcp-hostsfile of that shape works); repeatable',
  ),
  F(
    'dhcp-range',
    'dhcp.ranges',
    'repeat',
    'START,END[,SECONDS|infinite]',
    'dynamic range for unknown hosts (lease time also as 10m, 12h, 1d); repeatable',
  ),
  F(
    'dhcp-gateway',
    'dhcp.gateway',
    'string',
    'IP',
    'router for static and range leases (BareMetalHosts use their gateway annotation)',
  ),
  F('dhcp-dns', 'dhcp.dns', 'string', 'IP[,IP]', 'DNS servers for static and range leases'),
  F('dhcp-ntp', 'dhcp.ntp', 'string', 'IP[,IP]', 'NTP servers for static and range leases'),
  F(
    'dhcp-lease-time',
    'dhcp.leaseSeconds',
    'string',
    'SECONDS',
    'lease time for BareMetalHost and static leases (default 3600)',
  ),
  F(
    'lease-file',
    'dhcp.leaseFile',
    'string',
    'PATH',
    'journal of dynamic-range leases (required with --dhcp-range to survive restarts)',
  ),
  F(
    'bmh-file',
    'sources.bmhFiles',
    'repeat',
    'FILE',
    'BareMetalHost manifests (multi-document YAML), watched and reloaded; repeatable',
  ),
  F(
    'annotation-prefix',
    'sources.annotationPrefix',
    'string',
    'PREFIX/',
    'BareMetalHost annotation prefix (default metal3.vcluster.com/)',
  ),
  F(
    'dhcp',
    'dhcp.enabled',
    'bool',
    '',
    'serve DHCPv4 (default true; =false for TFTP/HTTP behind another DHCP server, or an IPv6-only network)',
  ),
  F(
    'dhcp6-server-ip',
    'dhcp6.serverIP',
    'string',
    'IPV6[/prefix]',
    'IPv6 provisioning address of this server (prefix default /64; "auto" = first global IPv6); setting it turns DHCPv6 and boot over IPv6 on',
  ),
  F(
    'dhcp6',
    'dhcp6.enabled',
    'bool',
    '',
    'serve DHCPv6 (default: on when --dhcp6-server-ip is set; =false turns it off)',
  ),
  F('dhcp6-listen', 'dhcp6.listen', 'string', '[ADDR]:PORT', 'DHCPv6 address (default [::]:547)'),
  F(
    'dhcp6-interface',
    'dhcp6.interface',
    'string',
    'IFNAME',
    'interface whose link DHCPv6 serves, joined to ff02::1:2 (default: the one that holds the IPv6 server address)',
  ),
  F(
    'dhcp6-range',
    'dhcp6.ranges',
    'repeat',
    'START,END[,SECONDS|infinite]',
    'IPv6 dynamic range for unknown hosts (at most 2^20 addresses of it are used); repeatable',
  ),
  F('dhcp6-dns', 'dhcp6.dns', 'string', 'IPV6[,IPV6]', 'DNS servers given over DHCPv6 (option 23)'),
  F('dhcp6-ntp', 'dhcp6.ntp', 'string', 'IPV6[,IPV6]', 'NTP servers given over DHCPv6 (option 56)'),
  F(
    'dhcp6-domain-search',
    'dhcp6.domainSearch',
    'repeat',
    'DOMAIN',
    'domain search list given over DHCPv6 (option 24); repeatable',
  ),
  F(
    'dhcp6-lease-time',
    'dhcp6.leaseSeconds',
    'string',
    'SECONDS',
    'valid lifetime of BareMetalHost and static IPv6 leases (default 3600)',
  ),
  F(
    'dhcp6-lease-file',
    'dhcp6.leaseFile',
    'string',
    'PATH',
    'journal of IPv6 dynamic-range leases (required with --dhcp6-range, unless leases live in Kubernetes)',
  ),
  F(
    'dhcp6-rapid-commit',
    'dhcp6.rapidCommit',
    'bool',
    '',
    'answer a Solicit that asks for Rapid Commit with a Reply at once (default true)',
  ),
  F(
    'tftp-listen6',
    'tftp.listen6',
    'string',
    '[ADDR]:PORT',
    'TFTP address over IPv6 (default [<ipv6-server-ip>]:69 with DHCPv6 on); "" disables it',
  ),
  F('tftp-listen', 'tftp.listen', 'string', 'ADDR:PORT', 'TFTP address (default <server-ip>:69); "" disables TFTP'),
  F(
    'tftp-root',
    'tftp.root',
    'string',
    'DIR',
    'directory of iPXE binaries served by TFTP and HTTP (default /usr/lib/ipxe)',
  ),
  F(
    'tftp-single-port',
    'tftp.singlePort',
    'bool',
    '',
    'serve every transfer from the listen port (for Kubernetes Service NAT) instead of per-transfer ports',
  ),
  F(
    'http-listen',
    'http.listen',
    'string',
    'ADDR:PORT',
    'HTTP address: scripts, binaries, image proxy, API proxy, metrics (default 0.0.0.0:8080; [::]:8080, both families, with DHCPv6 on)',
  ),
  F(
    'http-advertise-url',
    'http.advertiseUrl',
    'string',
    'URL',
    'URL booting hosts use to reach the HTTP server (default http://<server-ip>:<http-port>)',
  ),
  F(
    'ipxe-templates',
    'http.templatesDir',
    'string',
    'DIR',
    'directory of iPXE script templates overriding the built-in ones',
  ),
  F(
    'secure-boot-default',
    'secureBoot.default',
    'bool',
    '',
    'UEFI hosts without spec.bootMode or a secure-boot annotation boot the Secure Boot chain (signed shim → GRUB) instead of iPXE',
  ),
  F(
    'secure-boot-shim-x64',
    'secureBoot.files.x86_64.shim',
    'string',
    'FILE',
    'signed shim served as shimx64.efi (default /usr/lib/shim/shimx64.efi.signed); "" leaves x86_64 without the chain',
  ),
  F(
    'secure-boot-second-stage-x64',
    'secureBoot.files.x86_64.secondStage',
    'string',
    'FILE',
    'signed GRUB network image (or signed iPXE) served as grubx64.efi (default /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed)',
  ),
  F(
    'secure-boot-shim-arm64',
    'secureBoot.files.arm64.shim',
    'string',
    'FILE',
    'signed shim served as shimaa64.efi (default /usr/lib/shim/shimaa64.efi.signed); "" leaves arm64 without the chain',
  ),
  F(
    'secure-boot-second-stage-arm64',
    'secureBoot.files.arm64.secondStage',
    'string',
    'FILE',
    'signed GRUB network image (or signed iPXE) served as grubaa64.efi (default /usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed)',
  ),
  F(
    'image-listen',
    'http.imageListen',
    'string',
    'ADDR:PORT',
    'serve the image proxy from worker processes on this address, so image streaming never delays DHCP/TFTP; scripts then point images here ("" = in-process on --http-listen, the default)',
  ),
  F(
    'image-workers',
    'http.imageWorkers',
    'string',
    'N',
    'image worker processes sharing --image-listen, each on a core of its own (default 0 = one per core but one, at least 1)',
  ),
  F(
    'image-advertise-url',
    'http.imageAdvertiseUrl',
    'string',
    'URL',
    'URL booting hosts fetch images from (default http://<server-ip>:<image-port> with --image-listen and --ironic-http-url, else the HTTP advertise URL)',
  ),
  F(
    'image-cache-dir',
    'http.imageCacheDir',
    'string',
    'DIR',
    'enables the read-through image cache in DIR/metalboot-image-cache (its own, marked; system directories are refused)',
  ),
  F('image-cache-max-bytes', 'http.imageCacheMaxBytes', 'string', 'BYTES', 'image cache size bound (default 20 GiB)'),
  F(
    'callback-listen',
    'proxy.callbackListen',
    'string',
    'ADDR:PORT',
    'Ironic → IPA callback listener (default 0.0.0.0:8081; [::]:8081 with DHCPv6 on); "" disables',
  ),
  F(
    'callback-advertise-url',
    'proxy.callbackAdvertiseUrl',
    'string',
    'URL',
    'URL Ironic uses to reach the callback listener (default http://<server-ip>:<callback-port>)',
  ),
  F(
    'api-advertise-url',
    'proxy.apiAdvertiseUrl',
    'string',
    'URL',
    'Ironic API URL given to IPA (default the HTTP advertise URL: the API proxy)',
  ),
  F(
    'ironic-http-url',
    'proxy.ironicHttpUrl',
    'string',
    'URL',
    "Ironic's HTTP server (images, IPA kernel/initramfs, pxelinux.cfg)",
  ),
  F('ironic-api-url', 'proxy.ironicApiUrl', 'string', 'URL', 'Ironic API that the API proxy forwards to'),
  F(
    'callback-insecure-skip-verify',
    'proxy.callbackInsecureSkipVerify',
    'bool',
    '',
    "don't verify IPA's TLS certificate on callbacks (default: pin the certificate IPA sent)",
  ),
  F(
    'inspector-collectors',
    'inspector.collectors',
    'string',
    'LIST',
    'ipa-inspection-collectors for inspection (default default,logs)',
  ),
  F(
    'inspector-extra-kernel-param',
    'inspector.extraKernelParams',
    'repeat',
    'P',
    'extra kernel parameter for the inspector script; repeatable',
  ),
  F(
    'installer-extra-kernel-param',
    'installer.extraKernelParams',
    'repeat',
    'P',
    'extra kernel parameter for installer scripts; repeatable',
  ),
  F(
    'kube',
    'sources.kube.enabled',
    'bool',
    '',
    'watch BareMetalHosts in the cluster (in-cluster service account or --kubeconfig)',
  ),
  F(
    'kube-namespace',
    'sources.kube.namespace',
    'string',
    'NS',
    'namespace to watch (default: all namespaces the account may list)',
  ),
  F('kubeconfig', 'sources.kube.kubeconfig', 'string', 'PATH', 'kubeconfig file (default: in-cluster configuration)'),
  F(
    'leader-election-id',
    'leaderElection.id',
    'string',
    'NAME',
    'replicas elect a leader through the coordination.k8s.io/v1 Lease NAME (needs --kubeconfig or a pod) and share range leases, agent records and the callback CA through the API (docs/decisions/0010-replicas-share-state.md); every replica serves',
  ),
  F(
    'leader-election-namespace',
    'leaderElection.namespace',
    'string',
    'NS',
    "namespace of the leader-election Lease (default: the pod's own, else --kube-namespace, else default)",
  ),
  F(
    'router-advertisements',
    'routerAdvertisements.enabled',
    'bool',
    '',
    "answer iPXE's IPv6 router solicitation with a router advertisement that changes no host's routing (lifetime 0, no prefix), so boots skip its ~15 s IPv6 wait; with DHCP on, needs radvd and CAP_NET_RAW (default true; =false turns it off)",
  ),
  F(
    'router-advertisements-interface',
    'routerAdvertisements.interface',
    'string',
    'IF',
    'interface for router advertisements (default: the one that holds the server IP)',
  ),
  F('log-level', 'log.level', 'string', 'LEVEL', 'fatal, error, warn, info (default), debug, trace, silent'),
  F('help', undefined, 'bool', '', 'print this reference and exit'),
  F('version', undefined, 'bool', '', 'print the version and exit'),
];

const BY_NAME = new Map(FLAGS.map((f) => [f.flag, f]));

export function envName(flag: string): string {
  return `METALBOOT_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export interface ParsedArgs {
  /** Values by flag name: string, boolean, or string[] for repeatable flags. */
  readonly values: Map<string, string | boolean | string[]>;
  readonly errors: string[];
}

/** Parses `--flag value`, `--flag=value` and boolean `--flag` / `--flag=false`. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string | boolean | string[]>();
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      errors.push(`unexpected argument "${a}"`);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const spec = BY_NAME.get(name);
    if (spec === undefined) {
      errors.push(`--${name}: unknown flag (see --help)`);
      continue;
    }
    let value: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
    if (spec.kind === 'bool') {
      if (value === undefined) values.set(name, true);
      else if (value === 'true' || value === 'false') values.set(name, value === 'true');
      else errors.push(`--${name}: expected true or false, got "${value}"`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) {
        errors.push(`--${name}: missing value ${spec.arg}`);
        continue;
      }
      value = argv[++i]!;
    }
    if (spec.kind === 'repeat') {
      const prev = values.get(name);
      values.set(name, [...(Array.isArray(prev) ? prev : []), value]);
    } else values.set(name, value);
  }
  return { values, errors };
}

/** Settings from `METALBOOT_*` variables; repeatable flags take entries separated by newlines or ";". */
export function envValues(env: Readonly<Record<string, string | undefined>>): Map<string, string | boolean | string[]> {
  const values = new Map<string, string | boolean | string[]>();
  for (const spec of FLAGS) {
    if (spec.key === undefined) continue;
    const v = env[envName(spec.flag)];
    if (v === undefined) continue;
    if (spec.kind === 'repeat')
      values.set(
        spec.flag,
        v
          .split(/[\n;]/)
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      );
    else if (spec.kind === 'bool') values.set(spec.flag, v === 'true' || v === '1');
    else values.set(spec.flag, v);
  }
  return values;
}

export function helpText(version: string): string {
  const lines = [
    `metalboot ${version}: DHCP, TFTP and HTTP network boot for Metal3/Ironic`,
    '',
    'Usage: metalboot [--config FILE] [flags]',
    '',
    'Every flag is also an environment variable METALBOOT_<FLAG> (e.g. METALBOOT_DHCP_RANGE) and a',
    'key of the YAML file (shown in brackets). Precedence: flags > environment > file > defaults.',
    '$(VAR) inside any value is expanded from the environment, as Kubernetes does.',
    '',
  ];
  for (const f of FLAGS) {
    const head = `  --${f.flag}${f.arg ? ` ${f.arg}` : ''}`;
    lines.push(head);
    lines.push(`      ${f.help}${f.key ? ` [${f.key.join('.')}]` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The README's flag reference table (a test keeps the README in step with this table). */
export function flagsMarkdown(): string {
  const rows = FLAGS.map(
    (f) =>
      `| \`--${f.flag}${f.arg ? ` ${f.arg}` : ''}\` | ${f.key ? `\`${f.key.join('.')}\`` : ''} | ${f.key ? `\`${envName(f.flag)}\`` : ''} | ${f.help.replaceAll('|', '\\|')} |`,
  );
  return ['| flag | YAML key | environment | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
