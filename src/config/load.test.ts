import { describe, expect, it } from 'vitest';
import { loadConfig, type LoadInput, type LoadResult } from './load.js';
import { FLAGS, helpText } from './flags.js';
import { parseIpv4Cidr } from '../net/ipv4.js';
import { formatIpv4 } from '../net/ipv4.js';

function load(argv: string[], files: Record<string, string> = {}, env: Record<string, string> = {}): LoadResult {
  const input: LoadInput = {
    argv,
    env,
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return f;
    },
    localAddresses: () => [parseIpv4Cidr('192.168.50.2/24')!],
  };
  return loadConfig(input);
}

function ok(r: LoadResult) {
  if (r.kind !== 'config') throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function errors(r: LoadResult): readonly string[] {
  if (r.kind !== 'invalid') throw new Error(`expected errors, got ${r.kind}`);
  return r.errors;
}

describe('loadConfig', () => {
  it('derives defaults from the server IP', () => {
    const c = ok(load(['--server-ip', '10.1.0.5/16']));
    expect(formatIpv4(c.dhcp.serverIp.address)).toBe('10.1.0.5');
    expect(c.dhcp.serverIp.prefix).toBe(16);
    expect(c.tftp.listen).toEqual({ host: '10.1.0.5', port: 69 });
    expect(c.http.advertiseUrl).toBe('http://10.1.0.5:8080');
    expect(c.proxy.apiAdvertiseUrl).toBe('http://10.1.0.5:8080');
    expect(c.proxy.callbackAdvertiseUrl).toBe('http://10.1.0.5:8081');
    expect(c.inspector.collectors).toBe('default,logs');
    expect(Object.isFrozen(c.dhcp)).toBe(true);
  });

  it("router advertisements: on by default on the server IP's interface; flags, environment and YAML turn them off or pick one", () => {
    const c = ok(load(['--server-ip', '10.1.0.5/16']));
    expect(c.routerAdvertisements).toEqual({ enabled: true, maxIntervalSeconds: 600, radvd: 'radvd' });
    expect(ok(load(['--router-advertisements=false'])).routerAdvertisements.enabled).toBe(false);
    expect(ok(load([], {}, { METALBOOT_ROUTER_ADVERTISEMENTS: 'false' })).routerAdvertisements.enabled).toBe(false);
    expect(ok(load(['--router-advertisements-interface', 'net1'])).routerAdvertisements.interface).toBe('net1');
    const yaml = 'routerAdvertisements:\n  maxIntervalSeconds: 30\n  runtimeDir: /run/metalboot\n';
    expect(ok(load(['--config', 'c.yaml'], { 'c.yaml': yaml })).routerAdvertisements).toMatchObject({
      maxIntervalSeconds: 30,
      runtimeDir: '/run/metalboot',
    });
    expect(
      errors(
        load(['--router-advertisements-interface', 'eth0,eth1', '--config', 'c.yaml'], {
          'c.yaml': 'routerAdvertisements:\n  maxIntervalSeconds: 3\n',
        }),
      ),
    ).toEqual([
      'routerAdvertisements.interface: must be an interface name (1-15 of A-Z a-z 0-9 _ . -)',
      'routerAdvertisements.maxIntervalSeconds: Too small: expected number to be >=4',
    ]);
  });

  it('runs the image proxy in-process unless --image-listen gives the worker a port', () => {
    const inProcess = ok(load(['--server-ip', '10.1.0.5/16']));
    expect(inProcess.http.imageListen).toBeUndefined();
    expect(inProcess.http.imageAdvertiseUrl).toBe('http://10.1.0.5:8080');
    const worker = ok(
      load(['--server-ip', '10.1.0.5/16', '--image-listen', '0.0.0.0:8082', '--ironic-http-url', 'http://ironic:6180']),
    );
    expect(worker.http.imageListen).toEqual({ host: '0.0.0.0', port: 8082 });
    expect(worker.http.imageAdvertiseUrl).toBe('http://10.1.0.5:8082');
    // Nothing to proxy without Ironic's URL: no worker, so images stay on the HTTP port.
    expect(ok(load(['--server-ip', '10.1.0.5/16', '--image-listen', '0.0.0.0:8082'])).http.imageAdvertiseUrl).toBe(
      'http://10.1.0.5:8080',
    );
    expect(
      ok(load(['--image-listen', '0.0.0.0:8082', '--image-advertise-url', 'http://images.example:8000'])).http
        .imageAdvertiseUrl,
    ).toBe('http://images.example:8000');
    expect(errors(load(['--image-listen', '10.1.0.5:8080']))).toEqual([
      'http.imageListen: 10.1.0.5:8080 overlaps http.listen 0.0.0.0:8080; give the image worker a port of its own',
    ]);
    // Port 0 is a free port of its own for each listener, and URLs follow the bound port.
    const zero = ok(
      load(['--http-listen', '127.0.0.1:0', '--image-listen', '127.0.0.1:0', '--ironic-http-url', 'http://i']),
    );
    expect(zero.http.imageListen).toEqual({ host: '127.0.0.1', port: 0 });
    expect(zero.http.imageAdvertiseUrl).toBe('http://192.168.50.2:0');
  });

  it('picks the first local address for serverIP auto', () => {
    expect(formatIpv4(ok(load([])).dhcp.serverIp.address)).toBe('192.168.50.2');
  });

  it('layers file < environment < flags and expands $(VAR)', () => {
    const yaml =
      'dhcp:\n  serverIP: "$(SERVER_IP)/24"\n  listen: "$(SERVER_IP):67"\ntftp:\n  listen: "$(SERVER_IP):1069"\nlog:\n  level: debug\n';
    const c = ok(
      load(
        ['--config', 'c.yaml', '--log-level', 'warn'],
        { 'c.yaml': yaml },
        { SERVER_IP: '10.9.0.1', METALBOOT_DHCP_DNS: '1.1.1.1,8.8.8.8', METALBOOT_LOG_LEVEL: 'error' },
      ),
    );
    expect(c.dhcp.listen).toEqual({ host: '10.9.0.1', port: 67 });
    expect(c.tftp.listen).toEqual({ host: '10.9.0.1', port: 1069 });
    expect(c.dhcp.dns.map(formatIpv4)).toEqual(['1.1.1.1', '8.8.8.8']);
    expect(c.log.level).toBe('warn');
  });

  it('keeps $$(VAR) as a literal and "" disables TFTP', () => {
    const c = ok(load(['--tftp-listen', '', '--inspector-extra-kernel-param', 'x=$$(Y)']));
    expect(c.tftp.listen).toBeUndefined();
    expect(c.inspector.extraKernelParams).toEqual(['x=$(Y)']);
  });

  it('reads static hosts from the flag and validates dnsmasq-style hosts files', () => {
    const file =
      '# rack 1\n52:54:00:00:00:01,192.168.50.11,node1\n\n52-54-00-00-00-02,192.168.50.12 # trailing comment\n';
    const c = ok(
      load(
        [
          '--dhcp-hosts',
          '52:54:00:00:00:03,192.168.50.13;52:54:00:00:00:04,192.168.50.14,n4',
          '--dhcp-hosts-file',
          'hosts',
        ],
        { hosts: file },
      ),
    );
    expect(c.dhcp.hosts.map((h) => [h.mac, formatIpv4(h.ip!), h.hostname])).toEqual([
      ['52:54:00:00:00:03', '192.168.50.13', undefined],
      ['52:54:00:00:00:04', '192.168.50.14', 'n4'],
    ]);
    expect(c.dhcp.hostsFiles).toEqual(['hosts']);
    const dup = errors(
      load(['--dhcp-hosts', '52:54:00:00:00:01,192.168.50.99', '--dhcp-hosts-file', 'hosts'], { hosts: file }),
    );
    expect(dup).toEqual(['dhcp.hosts: 52:54:00:00:00:01 is listed twice, with 192.168.50.99 and 192.168.50.11']);
  });

  it('parses ranges with lease times', () => {
    const c = ok(
      load([
        '--server-ip',
        '10.0.0.1/24',
        '--dhcp-range',
        '10.0.0.100,10.0.0.199,12h',
        '--dhcp-range',
        '10.0.0.200,10.0.0.210,infinite',
        '--lease-file',
        '/tmp/l',
      ]),
    );
    expect(c.dhcp.ranges.map((r) => r.leaseSeconds)).toEqual([43200, 0xffffffff]);
  });

  it.each([
    ['bad CIDR', ['--server-ip', '10.0.0.300/24'], 'dhcp.serverIP: "10.0.0.300/24" is not IP[/prefix] or "auto"'],
    [
      'bad MAC',
      ['--dhcp-hosts', 'zz:54:00:00:00:01,10.0.0.5'],
      'dhcp.hosts[0]: entry 1: "zz:54:00:00:00:01" is not a MAC address',
    ],
    [
      'bad IP in hosts',
      ['--dhcp-hosts', '52:54:00:00:00:01,10.0.0'],
      'dhcp.hosts[0]: entry 1: "10.0.0" is not an IPv4 or IPv6 address',
    ],
    [
      'range end before start',
      ['--dhcp-range', '10.0.0.9,10.0.0.1'],
      'dhcp.ranges[0]: range end 10.0.0.1 is before its start 10.0.0.9',
    ],
    [
      'overlapping ranges',
      [
        '--server-ip',
        '10.0.0.1/24',
        '--lease-file',
        'l',
        '--dhcp-range',
        '10.0.0.10,10.0.0.20',
        '--dhcp-range',
        '10.0.0.15,10.0.0.30',
      ],
      'dhcp.ranges[0]: overlaps dhcp.ranges[1] (10.0.0.15-10.0.0.30)',
    ],
    [
      'range outside subnet',
      ['--server-ip', '10.0.0.1/24', '--lease-file', 'l', '--dhcp-range', '10.0.1.10,10.0.1.20'],
      "dhcp.ranges[0]: 10.0.1.10-10.0.1.20 is not inside the server's subnet 10.0.0.1/24",
    ],
    [
      'range containing the server',
      ['--server-ip', '10.0.0.1/24', '--lease-file', 'l', '--dhcp-range', '10.0.0.1,10.0.0.20'],
      "dhcp.ranges[0]: contains the server's own address 10.0.0.1",
    ],
    [
      'range without lease file',
      ['--server-ip', '10.0.0.1/24', '--dhcp-range', '10.0.0.10,10.0.0.20'],
      'dhcp.leaseFile: required with dhcp.ranges',
    ],
    ['bad listen', ['--dhcp-listen', '0.0.0.0:99999'], 'dhcp.listen: "0.0.0.0:99999" is not ADDR:PORT'],
    ['bad URL', ['--ironic-http-url', 'ftp://x'], 'proxy.ironicHttpUrl: "ftp://x" is not an http(s) URL'],
    [
      'unset variable',
      ['--server-ip', '$(SERVER_IP)'],
      'dhcp.serverIP: "$(SERVER_IP)" is not IP[/prefix] or "auto" (environment variable SERVER_IP is not set)',
    ],
    [
      'IPA typo',
      ['--inspector-extra-kernel-param', 'ipa-inspector-collectors=default'],
      'inspector.extraKernelParams[0]: "ipa-inspector-collectors=default" is ignored by IPA: the parameter is spelled "ipa-inspection-collectors"',
    ],
    [
      'kernel param with a space',
      ['--installer-extra-kernel-param', 'a b'],
      'installer.extraKernelParams[0]: "a b" is not a single kernel parameter',
    ],
    ['unknown flag', ['--dhcp-rnage', 'x'], '--dhcp-rnage: unknown flag (see --help)'],
    ['bad log level', ['--log-level', 'loud'], 'log.level:'],
    [
      'duplicate MAC',
      ['--dhcp-hosts', '52:54:00:00:00:01,10.0.0.5;52:54:00:00:00:01,10.0.0.6'],
      'dhcp.hosts: 52:54:00:00:00:01 is listed twice, with 10.0.0.5 and 10.0.0.6',
    ],
    [
      'IP given twice',
      ['--dhcp-hosts', '52:54:00:00:00:01,10.0.0.5;52:54:00:00:00:02,10.0.0.5'],
      'dhcp.hosts: 10.0.0.5 is given to both 52:54:00:00:00:01 and 52:54:00:00:00:02',
    ],
    ['missing hosts file', ['--dhcp-hosts-file', 'nope'], 'dhcp.hostsFiles[0]: cannot read nope: ENOENT'],
  ])('%s names the key', (_name, argv, message) => {
    expect(errors(load(argv)).some((e) => e.startsWith(message))).toBe(true);
  });

  it('reports unknown YAML keys and bad hosts-file lines by key and line', () => {
    const yaml = 'dhcp:\n  serverIp: 10.0.0.1\n  hostsFiles: [h]\nhttp:\n  lisen: ":80"\n';
    const errs = errors(
      load(['--config', 'c.yaml'], { 'c.yaml': yaml, h: 'aa:bb:cc:dd:ee:ff,10.0.0.7\nbogus line\n' }),
    );
    expect(errs).toContain('dhcp: unknown key "serverIp"');
    expect(errs).toContain('http: unknown key "lisen"');
  });

  it('lists every problem at once', () => {
    const errs = errors(load(['--server-ip', 'x', '--dhcp-listen', 'y', '--log-level', 'z']));
    expect(errs.length).toBe(3);
  });

  it('reports a hosts-file error with its line', () => {
    const errs = errors(
      load(['--server-ip', '10.0.0.1', '--dhcp-hosts-file', 'h'], { h: 'aa:bb:cc:dd:ee:ff,10.0.0.7\n\nbogus line\n' }),
    );
    expect(errs).toEqual([
      'dhcp.hostsFiles[0]: h line 3: "bogus line" is not MAC,IP[,hostname] (IP: IPv4, IPv6 or both)',
    ]);
  });

  it('documents every flag in --help', () => {
    expect(load(['--help']).kind).toBe('help');
    const help = helpText('0.0.0');
    for (const f of FLAGS) expect(help).toContain(`--${f.flag}`);
  });
});

describe('leaderElection', () => {
  const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const NS_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
  const BASE = ['--server-ip', '10.1.0.5/16'];

  it('is off without an id', () => {
    expect(ok(load(BASE)).leaderElection).toBeUndefined();
  });

  it.each<{ name: string; argv: string[]; files: Record<string, string>; want: string }>([
    { name: 'the pod namespace', argv: [], files: { [NS_FILE]: 'metal3\n' }, want: 'metal3' },
    { name: '--kube-namespace', argv: ['--kube-namespace', 'bmh'], files: {}, want: 'bmh' },
    { name: 'default', argv: [], files: {}, want: 'default' },
    {
      name: '--leader-election-namespace over the pod',
      argv: ['--leader-election-namespace', 'other'],
      files: { [NS_FILE]: 'metal3' },
      want: 'other',
    },
  ])('takes the Lease namespace from $name, with client-go default timing', ({ argv, files, want }) => {
    const c = ok(load([...BASE, '--leader-election-id', 'metalboot', ...argv], files, IN_CLUSTER));
    expect(c.leaderElection).toEqual({
      id: 'metalboot',
      namespace: want,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
  });

  it('is set by the environment and the YAML file too', () => {
    const env = ok(load(BASE, {}, { ...IN_CLUSTER, METALBOOT_LEADER_ELECTION_ID: 'from-env' }));
    expect(env.leaderElection?.id).toBe('from-env');
    const yaml =
      'leaderElection:\n  id: from-yaml\n  leaseDurationSeconds: 30\n  renewDeadlineSeconds: 20\n  retryPeriodSeconds: 4\n';
    const file = ok(load([...BASE, '--config', 'c.yaml', '--kubeconfig', '/kc'], { 'c.yaml': yaml }));
    expect(file.leaderElection).toMatchObject({
      id: 'from-yaml',
      leaseDurationMs: 30_000,
      renewDeadlineMs: 20_000,
      retryPeriodMs: 4_000,
    });
  });

  it('refuses an id without a cluster, bad timing and a bad name, by key', () => {
    expect(errors(load([...BASE, '--leader-election-id', 'metalboot']))).toEqual([
      'leaderElection.id: needs a cluster: pass --kubeconfig, or run in a pod (KUBERNETES_SERVICE_HOST/PORT are not set)',
    ]);
    const yaml =
      'leaderElection:\n  id: m\n  leaseDurationSeconds: 10\n  renewDeadlineSeconds: 10\n  retryPeriodSeconds: 10\n';
    expect(errors(load([...BASE, '--config', 'c.yaml'], { 'c.yaml': yaml }, IN_CLUSTER))).toEqual([
      'leaderElection.renewDeadlineSeconds: 10 must be shorter than leaseDurationSeconds (10)',
      'leaderElection.retryPeriodSeconds: 10 must be shorter than renewDeadlineSeconds (10)',
    ]);
    expect(errors(load([...BASE, '--leader-election-id', 'Not_A_Name'], {}, IN_CLUSTER))[0]).toMatch(
      /^leaderElection\.id: must be a Lease name/,
    );
  });
});

describe('README', () => {
  it('carries the current flag reference', async () => {
    const { readFileSync } = await import('node:fs');
    const { flagsMarkdown } = await import('./flags.js');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const between = readme.split('<!-- flags:begin -->')[1]?.split('<!-- flags:end -->')[0]?.trim();
    expect(between).toBe(flagsMarkdown());
  });
});

describe('loadConfig: dhcp6', () => {
  it('is off by default, and the listeners stay IPv4', () => {
    const c = ok(load([]));
    expect(c.dhcp6).toBeUndefined();
    expect(c.http.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.proxy.callbackListen).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(c.tftp.listen6).toBeUndefined();
  });

  it('turns on with a server address: dual-stack HTTP, TFTP over IPv6, IPv6 advertise URLs', () => {
    const c = ok(
      load([
        '--dhcp6-server-ip',
        'fd00:77::1',
        '--dhcp6-range',
        'fd00:77::100,fd00:77::1ff',
        '--dhcp6-lease-file',
        'l6',
      ]),
    );
    expect(c.dhcp6?.serverIp.prefix).toBe(64);
    expect(c.dhcp6?.listen).toEqual({ host: '::', port: 547 });
    expect(c.http.listen).toEqual({ host: '::', port: 8080 });
    expect(c.proxy.callbackListen).toEqual({ host: '::', port: 8081 });
    expect(c.tftp.listen6).toEqual({ host: 'fd00:77::1', port: 69 });
    expect(c.dhcp6?.urls).toEqual({
      advertiseUrl: 'http://[fd00:77::1]:8080',
      imageAdvertiseUrl: 'http://[fd00:77::1]:8080',
      apiAdvertiseUrl: 'http://[fd00:77::1]:8080',
    });
    // The IPv4 URLs are unchanged.
    expect(c.http.advertiseUrl).toBe('http://192.168.50.2:8080');
  });

  it('keeps an advertise URL that names something other than the server IPv4 address', () => {
    const c = ok(load(['--dhcp6-server-ip', 'fd00:77::1', '--http-advertise-url', 'http://boot.example:8080']));
    expect(c.dhcp6?.urls.advertiseUrl).toBe('http://boot.example:8080');
  });

  it('checks ranges, the journal and the server address by key', () => {
    expect(errors(load(['--dhcp6-server-ip', 'fd00:77::1/64', '--dhcp6-range', 'fd00:99::1,fd00:99::9']))).toEqual([
      "dhcp6.ranges[0]: fd00:99::1-fd00:99::9 is not inside the server's subnet fd00:77::1/64",
      'dhcp6.leaseFile: required with dhcp6.ranges (or --leader-election-id: leases in the Kubernetes API), so that a restart never hands one address to two hosts',
    ]);
    expect(errors(load(['--dhcp6-server-ip', 'fd00:77::zz']))).toEqual([
      'dhcp6.serverIP: "fd00:77::zz" is not IPv6[/prefix] or "auto"',
    ]);
    expect(errors(load(['--dhcp6', '--dhcp6-range', '10.0.0.1,10.0.0.2']))).toEqual([
      'dhcp6.ranges[0]: range start "10.0.0.1" is not an IPv6 address',
    ]);
    expect(errors(load(['--dhcp6']))).toEqual([
      'dhcp6.serverIP: no global IPv6 address found on this host; set --dhcp6-server-ip',
    ]);
  });

  it('needs no IPv4 address on an IPv6-only network: URLs are made from loopback and swapped', () => {
    const r = loadConfig({
      argv: ['--dhcp=false', '--dhcp6-server-ip', 'fd00:77::1/64', '--tftp-listen', ''],
      env: {},
      readFile: () => '',
      localAddresses: () => [],
    });
    if (r.kind !== 'config') throw new Error(JSON.stringify(r));
    expect(r.config.dhcp6?.urls.advertiseUrl).toBe('http://[fd00:77::1]:8080');
    expect(errors(loadConfig({ argv: [], env: {}, readFile: () => '', localAddresses: () => [] }))).toEqual([
      'dhcp.serverIP: "auto" found no non-loopback IPv4 address; set --server-ip',
    ]);
  });

  it('can switch TFTP over IPv6 off and DHCPv6 off even with an address', () => {
    expect(ok(load(['--dhcp6-server-ip', 'fd00:77::1', '--tftp-listen6', ''])).tftp.listen6).toBeUndefined();
    expect(ok(load(['--dhcp6-server-ip', 'fd00:77::1', '--dhcp6=false'])).dhcp6).toBeUndefined();
  });
});
