import { describe, expect, it } from 'vitest';
import {
  grubEscape,
  grubSearchNames,
  grubTarget,
  GrubTemplates,
  parseGrubName,
  renderGrubConfig,
  rewriteIronicGrubConfig,
  type GrubConfigOptions,
  type IronicGrubConfig,
} from './grub-configs.js';
import { isImageName } from './made-files.js';
import { HostIndex } from '../leases/host-index.js';
import { bmhToHost, type BareMetalHostObject } from '../leases/bmh.js';
import { parseIpv4 } from '../net/ipv4.js';
import { parseMac, type Mac } from '../net/mac.js';

const MAC = parseMac('52:54:00:00:00:05')!;
const IP = parseIpv4('10.0.0.5')!;

const host = (name: string, mac: string, ip: string, state: string) => {
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { name, namespace: 'm', annotations: { 'p/ip-address': `${ip}/24` } },
      spec: { bootMACAddress: mac, bootMode: 'UEFISecureBoot' },
      status: { provisioning: { state } },
    } as BareMetalHostObject,
    { annotationPrefix: 'p/', from: 'test' },
  );
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
};

const indexOf = (state = 'inspecting') => {
  const index = new HostIndex();
  index.replaceAll('bmh', [
    host('h5', MAC, '10.0.0.5', state),
    host('h6', '52:54:00:00:00:06', '10.0.0.6', 'provisioned'),
  ]);
  return index;
};

describe('GRUB configuration names', () => {
  it('the names a searching GRUB asks for, in order', () => {
    expect(grubSearchNames(MAC, IP)).toEqual([
      'grub/grub.cfg-01-52-54-00-00-00-05',
      'grub/grub.cfg-0A000005',
      'grub/grub.cfg-0A00000',
      'grub/grub.cfg-0A0000',
      'grub/grub.cfg-0A000',
      'grub/grub.cfg-0A00',
      'grub/grub.cfg-0A0',
      'grub/grub.cfg-0A',
      'grub/grub.cfg-0',
      'grub/grub.cfg',
    ]);
  });

  it.each([
    ['/grub/grub.cfg', { kind: 'by-peer' }],
    ['grub/grub.cfg', { kind: 'by-peer' }],
    ['/EFI/debian/grub.cfg', { kind: 'by-peer' }],
    ['/grub/grub.cfg-01-52-54-00-00-00-05', { kind: 'mac', mac: MAC }],
    ['grub.cfg-01-52-54-00-00-00-05', { kind: 'mac', mac: MAC }],
    ['/grub/grub.cfg-0A000005', { kind: 'ip', ip: IP }],
    ['/grub/grub.cfg-0A0000', { kind: 'subnet' }],
    ['/grub/x86_64-efi/command.lst', { kind: 'not-grub' }],
    ['grubx64.efi', { kind: 'not-grub' }],
    ['grub.cfg-20-52-54-00-00-00-05', { kind: 'not-grub' }],
  ])('%s', (name, expected) => {
    expect(parseGrubName(name)).toEqual(expected);
  });

  it.each([
    ["/grub/grub.cfg from the host's lease address", '/grub/grub.cfg', '10.0.0.5', { kind: 'host', mac: MAC }],
    ['/grub/grub.cfg over IPv4-mapped IPv6', '/grub/grub.cfg', '::ffff:10.0.0.5', { kind: 'host', mac: MAC }],
    ['the MAC name, whoever asks', '/grub/grub.cfg-01-52-54-00-00-00-05', '10.9.9.9', { kind: 'host', mac: MAC }],
    ['the full IP name', '/grub/grub.cfg-0A000005', '10.9.9.9', { kind: 'host', mac: MAC }],
    ['an unknown MAC name: GRUB moves on', '/grub/grub.cfg-01-52-54-00-00-00-99', '10.0.0.5', { kind: 'missing' }],
    ['a shortened IP name: GRUB moves on', '/grub/grub.cfg-0A0', '10.0.0.5', { kind: 'missing' }],
    [
      '/grub/grub.cfg from an address no host has',
      '/grub/grub.cfg',
      '10.0.0.77',
      { kind: 'fallback', why: 'no BareMetalHost or static host has the address 10.0.0.77 as its lease' },
    ],
  ])('%s', (_name, name, peer, expected) => {
    expect(grubTarget(parseGrubName(name), peer, indexOf())).toMatchObject(expected);
  });

  it.each([
    ['images/ironic-python-agent.kernel', true],
    ['/images/ironic-python-agent.initramfs', true],
    ['agent_images/x', true],
    ['/0b5c3a5e-1f1c-4f47-9a2b-0c1d2e3f4a5b/deploy_kernel', true],
    ['grubx64.efi', false],
    ['/grub/x86_64-efi/command.lst', false],
    ['images/../etc/passwd', false],
  ])('image name %s: %s', (name, expected) => {
    expect(isImageName(name)).toBe(expected);
  });
});

describe('grub.cfg rendering', () => {
  const options = (
    state: string,
    ironic: IronicGrubConfig = { kind: 'none' },
    asked: Mac[] = [],
  ): GrubConfigOptions => ({
    templates: new GrubTemplates(undefined),
    index: indexOf(state),
    baseUrl: 'http://10.0.0.1:8080',
    apiUrl: 'http://10.0.0.1:8080',
    annotationPrefix: 'p/',
    inspector: {
      collectors: 'default,logs',
      extraKernelParams: ['console=ttyS0'],
      kernelPath: 'images/ironic-python-agent.kernel',
      initramfsPath: 'images/ironic-python-agent.initramfs',
    },
    installer: { extraKernelParams: ['nomodeset'] },
    ironicHttpUrl: 'http://172.22.0.2:6180',
    ironicApiUrl: 'http://172.22.0.2:6385',
    fetchIronic: async (mac) => {
      asked.push(mac);
      return ironic;
    },
  });

  it('inspector: the IPA kernel and initramfs on the TFTP root, the same parameters and callback URL as iPXE', async () => {
    const c = await renderGrubConfig('/grub/grub.cfg', '10.0.0.5', options('inspecting'));
    expect(c).toMatchObject({ kind: 'inspector', mac: MAC });
    expect(c!.text).toContain(
      'linux "/images/ironic-python-agent.kernel" ipa-insecure=1 "ipa-inspection-collectors=default,logs" systemd.journald.forward_to_console=yes "BOOTIF=52:54:00:00:00:05" ipa-debug=1 ipa-enable-vlan-interfaces=all ipa-inspection-dhcp-all-interfaces=1 ipa-collect-lldp=1 "ipa-inspection-callback-url=http://10.0.0.1:8080/v1/continue_inspection" "ipa-api-url=http://10.0.0.1:8080" "console=ttyS0"\n',
    );
    expect(c!.text).toContain('initrd "/images/ironic-python-agent.initramfs"\nboot\n');
    expect(c!.text).toContain(
      '# metalboot GRUB inspector configuration for m/h5 (52:54:00:00:00:05): BareMetalHost m/h5 is in state inspecting',
    );
  });

  it('local boot: exit to the next boot option', async () => {
    const c = await renderGrubConfig('/grub/grub.cfg-0A000005', '10.0.0.5', options('provisioned'));
    expect(c?.kind).toBe('localboot');
    expect(c!.text).toMatch(/^exit$/m);
  });

  it("installer: Ironic's per-node GRUB config, rewritten", async () => {
    const asked: Mac[] = [];
    const ironic =
      'menuentry "deploy" {\n    linuxefi http://172.22.0.2:6180/n1/deploy_kernel ipa-api-url=http://172.22.0.2:6385 text\n    initrdefi http://172.22.0.2:6180/n1/deploy_ramdisk\n}\n';
    const c = await renderGrubConfig(
      '/grub/grub.cfg',
      '10.0.0.5',
      options('provisioning', { kind: 'config', text: ironic }, asked),
    );
    expect(asked).toEqual([MAC]);
    expect(c).toMatchObject({ kind: 'installer' });
    expect(c!.text).toBe(
      'menuentry "deploy" {\n    linux /n1/deploy_kernel ipa-api-url=http://10.0.0.1:8080 text nomodeset\n    initrd /n1/deploy_ramdisk\n}\n',
    );
  });

  it("installer: metalboot's own when Ironic has none", async () => {
    const c = await renderGrubConfig('/grub/grub.cfg', '10.0.0.5', options('provisioning'));
    expect(c?.kind).toBe('installer');
    expect(c!.text).toContain('"ipa-api-url=http://10.0.0.1:8080" systemd.journald.forward_to_console=yes "nomodeset"');
    expect(c!.text).toContain("Ironic has no per-node config, using metalboot's installer");
  });

  it('Ironic unreachable: a configuration that says why and tries again', async () => {
    const c = await renderGrubConfig(
      '/grub/grub.cfg',
      '10.0.0.5',
      options('provisioning', { kind: 'error', reason: 'ECONNREFUSED' }),
    );
    expect(c?.kind).toBe('retry');
    expect(c!.text).toContain('Ironic per-node config unavailable: ECONNREFUSED');
    expect(c!.text).toContain('configfile "${prefix}/grub.cfg"');
  });

  it('fallback: says why nothing matched, where to ask, and tries again', async () => {
    const c = await renderGrubConfig('/grub/grub.cfg', '10.0.0.77', options('inspecting'));
    expect(c).toMatchObject({ kind: 'fallback', host: undefined });
    expect(c!.text).toContain(
      'echo "metalboot: no BareMetalHost or static host has the address 10.0.0.77 as its lease"',
    );
    expect(c!.text).toContain('http://10.0.0.1:8080/debug/explain?mac=<MAC>');
    expect(c!.text).toContain('p/ip-address annotation');
  });

  it('no configuration under a name GRUB may skip', async () => {
    expect(
      await renderGrubConfig('/grub/grub.cfg-01-52-54-00-00-00-99', '10.0.0.5', options('inspecting')),
    ).toBeUndefined();
  });
});

describe('grubEscape', () => {
  it.each([
    ['plain', 'plain'],
    ['a "quote"', 'a \\"quote\\"'],
    ['${x}', '\\${x}'],
    ['back\\slash', 'back\\\\slash'],
  ])('%s', (value, expected) => {
    expect(grubEscape(value)).toBe(expected);
  });

  it('refuses a line break (a new GRUB command)', () => {
    expect(() => grubEscape('a\nreboot')).toThrow(expect.objectContaining({ code: 'GRUB_ERR_UNSAFE_VALUE' }));
  });
});

describe('rewriteIronicGrubConfig', () => {
  const r = {
    ironicHttpUrl: 'http://172.22.0.2:6180',
    ironicApiUrl: 'http://172.22.0.2:6385',
    apiUrl: 'http://10.0.0.1:8080',
    extraParams: [],
  };
  it.each([
    [
      'linuxefi and initrdefi become linux and initrd',
      '  linuxefi /k a\n  initrdefi /i\n',
      '  linux /k a\n  initrd /i\n',
    ],
    ["GRUB's (http,host:port) form of Ironic's httpd", 'linux (http,172.22.0.2:6180)/n/k\n', 'linux /n/k\n'],
    ['other URLs are left alone', 'linux http://other/k\n', 'linux http://other/k\n'],
    [
      'the Ironic API URL',
      'linux /k ironic_api=http://172.22.0.2:6385/v1\n',
      'linux /k ironic_api=http://10.0.0.1:8080/v1\n',
    ],
    [
      'ipa-api-url, whatever it was',
      'linux /k ipa-api-url=http://elsewhere:6385\n',
      'linux /k ipa-api-url=http://10.0.0.1:8080\n',
    ],
  ])('%s', (_name, input, expected) => {
    expect(rewriteIronicGrubConfig(input, r)).toBe(expected);
  });
});
