import { describe, expect, it } from 'vitest';
import { chooseChain, secureBootCpus, secureBootServedFiles, DEFAULT_SECURE_BOOT_FILES } from './secure-boot.js';
import { bootAnswers } from './boot-answer.js';
import { archInfo } from './arch.js';
import type { BootClient } from './boot-client.js';
import { bmhToHost, type BareMetalHostObject } from '../leases/bmh.js';
import type { HostRecord } from '../leases/host.js';

const bmh = (spec: Record<string, unknown>, annotations: Record<string, string> = {}): HostRecord => {
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { name: 'h', namespace: 'm', annotations: { 'p/ip-address': '10.0.0.5/24', ...annotations } },
      spec: { bootMACAddress: '52:54:00:00:00:05', ...spec },
    } as BareMetalHostObject,
    { annotationPrefix: 'p/', from: 'test' },
  );
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
};

describe('chooseChain', () => {
  it.each([
    [
      'bootMode UEFISecureBoot',
      { bootMode: 'UEFISecureBoot' },
      {},
      false,
      'secure-boot',
      'spec.bootMode is UEFISecureBoot',
    ],
    ['bootMode UEFI, default on', { bootMode: 'UEFI' }, {}, true, 'ipxe', 'spec.bootMode is UEFI'],
    ['bootMode legacy', { bootMode: 'legacy' }, {}, true, 'ipxe', 'spec.bootMode is legacy'],
    [
      'no bootMode, default off',
      {},
      {},
      false,
      'ipxe',
      'no spec.bootMode: the configured default (secureBoot.default) is off',
    ],
    [
      'no bootMode, default on',
      {},
      {},
      true,
      'secure-boot',
      'no spec.bootMode: the configured default (secureBoot.default) is on',
    ],
    [
      'annotation true beats bootMode UEFI',
      { bootMode: 'UEFI' },
      { 'p/secure-boot': 'true' },
      false,
      'secure-boot',
      'the secure-boot annotation is "true"',
    ],
    [
      'annotation false beats UEFISecureBoot',
      { bootMode: 'UEFISecureBoot' },
      { 'p/secure-boot': 'False' },
      true,
      'ipxe',
      'the secure-boot annotation is "false"',
    ],
    [
      'an unreadable annotation is ignored',
      { bootMode: 'UEFISecureBoot' },
      { 'p/secure-boot': 'yes' },
      false,
      'secure-boot',
      'spec.bootMode is UEFISecureBoot',
    ],
  ])('%s', (_name, spec, annotations, def, chain, why) => {
    expect(chooseChain(bmh(spec, annotations), def)).toEqual({ chain, why });
  });

  it('a client without a host (the range) follows the default', () => {
    expect(chooseChain(undefined, true).chain).toBe('secure-boot');
    expect(chooseChain(undefined, false).chain).toBe('ipxe');
  });

  it('the host record carries spec.bootMode and the annotation', () => {
    expect(bmh({ bootMode: 'UEFISecureBoot' }, { 'p/secure-boot': 'false' })).toMatchObject({
      bootMode: 'UEFISecureBoot',
      secureBoot: false,
    });
    expect(bmh({})).not.toHaveProperty('bootMode');
    expect(bmh({})).not.toHaveProperty('secureBoot');
  });
});

describe('signed files', () => {
  it('serves shim and the second stage under the names shim asks for, per architecture', () => {
    expect([...secureBootServedFiles(DEFAULT_SECURE_BOOT_FILES)]).toEqual([
      ['shimx64.efi', '/usr/lib/shim/shimx64.efi.signed'],
      ['grubx64.efi', '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'],
      ['shimaa64.efi', '/usr/lib/shim/shimaa64.efi.signed'],
      ['grubaa64.efi', '/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed'],
    ]);
  });

  it('an architecture with a file set to "" has no chain', () => {
    const files = { ...DEFAULT_SECURE_BOOT_FILES, arm64: { shim: '', secondStage: '/x' } };
    expect(secureBootCpus(files)).toEqual(['x86_64']);
    expect([...secureBootServedFiles(files).keys()]).toEqual(['shimx64.efi', 'grubx64.efi']);
  });
});

describe('boot answers on the Secure Boot chain', () => {
  const answers = bootAnswers({
    bootFiles: { bios: 'undionly.kpxe', 'uefi-x86_64': 'snponly.efi', 'uefi-arm64': 'snponly-arm64.efi' },
    httpAdvertiseUrl: 'http://10.0.0.1:8080',
    secureBoot: { default: false, cpus: ['x86_64', 'arm64'] },
  });
  const sb = { bootMode: 'UEFISecureBoot' } as const;
  const pxe = (code: number): BootClient => ({ kind: 'pxe', archCode: code, arch: archInfo(code) });
  const http = (code: number): BootClient => ({ kind: 'uefi-http', archCode: code, arch: archInfo(code) });

  it.each([
    ['x64 UEFI PXE (7)', pxe(7), { kind: 'tftp', file: 'shimx64.efi' }],
    ['x64 UEFI PXE (9)', pxe(9), { kind: 'tftp', file: 'shimx64.efi' }],
    ['arm64 UEFI PXE (11)', pxe(11), { kind: 'tftp', file: 'shimaa64.efi' }],
    [
      'x64 UEFI HTTP (16)',
      http(16),
      { kind: 'http-binary', file: 'shimx64.efi', url: 'http://10.0.0.1:8080/ipxe/shimx64.efi' },
    ],
    [
      'arm64 UEFI HTTP (19)',
      http(19),
      { kind: 'http-binary', file: 'shimaa64.efi', url: 'http://10.0.0.1:8080/ipxe/shimaa64.efi' },
    ],
    ['BIOS PXE is unchanged', pxe(0), { kind: 'tftp', file: 'undionly.kpxe' }],
    [
      'iPXE (a signed iPXE as second stage) gets the script',
      { kind: 'ipxe', archCode: 7, arch: archInfo(7) } as BootClient,
      { kind: 'ipxe-script', url: 'http://10.0.0.1:8080/boot.ipxe' },
    ],
    [
      'an architecture without signed files gets nothing',
      pxe(27),
      { kind: 'none', reason: 'no-signed-binary-for-arch' },
    ],
  ])('%s', (_name, client, expected) => {
    expect(answers.answer(client, true, sb)).toEqual(expected);
  });

  it('hosts off the chain keep iPXE; a host that must not netboot gets nothing', () => {
    expect(answers.answer(pxe(7), true, { bootMode: 'UEFI' })).toEqual({ kind: 'tftp', file: 'snponly.efi' });
    expect(answers.answer(pxe(7), true)).toEqual({ kind: 'tftp', file: 'snponly.efi' });
    expect(answers.answer(pxe(7), false, sb)).toEqual({ kind: 'none', reason: 'netboot-disabled' });
  });

  it('the default puts hosts without a boot mode on the chain, and every shim answer is a reply value', () => {
    const on = bootAnswers({
      bootFiles: { 'uefi-x86_64': 'snponly.efi' },
      httpAdvertiseUrl: 'http://h',
      secureBoot: { default: true, cpus: ['x86_64'] },
    });
    expect(on.answer(pxe(7), true)).toEqual({ kind: 'tftp', file: 'shimx64.efi' });
    expect(on.answer(pxe(7), true, { secureBoot: false })).toEqual({ kind: 'tftp', file: 'snponly.efi' });
    expect(on.all).toContainEqual({ kind: 'tftp', file: 'shimx64.efi' });
    expect(on.all).toContainEqual({ kind: 'http-binary', file: 'shimx64.efi', url: 'http://h/ipxe/shimx64.efi' });
  });
});
