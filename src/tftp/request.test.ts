import { describe, expect, it } from 'vitest';
import type { FileLookup, IpxeFile } from '../boot/ipxe-files.js';
import { decideRequest, type RequestContext } from './request.js';
import type { RequestPacket } from './packet.js';

const FILE: IpxeFile = {
  name: 'snponly.efi',
  path: '/r/snponly.efi',
  data: Buffer.alloc(1000),
  size: 1000,
  mtimeMs: 0,
  etag: '"x"',
};

const lookup = (name: string): FileLookup =>
  name === 'snponly.efi'
    ? { kind: 'file', file: FILE }
    : name.includes('..')
      ? { kind: 'refused', reason: 'traversal' }
      : { kind: 'missing' };

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
  lookup,
  closing: false,
  active: 0,
  activeForClient: 0,
  maxTransfers: 1000,
  maxPerClient: 8,
  limits: { maxBlksize: 1468, maxWindowsize: 64, maxTimeoutS: 8 },
  ...over,
});

const rrq = (over: Partial<RequestPacket> = {}): RequestPacket => ({
  op: 'rrq',
  filename: 'snponly.efi',
  mode: 'octet',
  options: [],
  ...over,
});

describe('decideRequest', () => {
  it.each<[string, RequestPacket, Partial<RequestContext>, string, number]>([
    ['write request', rrq({ op: 'wrq' }), {}, 'write-request', 2],
    ['netascii', rrq({ mode: 'netascii' }), {}, 'netascii', 4],
    ['NETASCII in capitals', rrq({ mode: 'NetAscii' }), {}, 'netascii', 4],
    ['mail mode', rrq({ mode: 'mail' }), {}, 'unknown-mode', 4],
    ['missing file', rrq({ filename: 'nope' }), {}, 'not-found', 1],
    ['traversal', rrq({ filename: '../etc/passwd' }), {}, 'access-violation', 2],
    ['server at its limit', rrq(), { active: 1000 }, 'server-busy', 0],
    ['client at its limit on a half-full server', rrq(), { activeForClient: 8, active: 500 }, 'client-busy', 0],
    ['shutting down', rrq(), { closing: true }, 'shutting-down', 0],
  ])('refuses %s', (_name, req, over, reason, code) => {
    const d = decideRequest(req, ctx(over));
    expect(d).toMatchObject({ kind: 'refuse', reason, error: { op: 'error', code } });
    if (d.kind === 'refuse') expect(d.error.message.length).toBeGreaterThan(0);
  });

  it('lets one address (hosts behind a NAT) hold more than its cap while half the slots are free', () => {
    expect(decideRequest(rrq(), ctx({ activeForClient: 200, active: 200 }))).toMatchObject({ kind: 'start' });
    expect(decideRequest(rrq(), ctx({ activeForClient: 499, active: 499 }))).toMatchObject({ kind: 'start' });
    expect(decideRequest(rrq(), ctx({ activeForClient: 500, active: 500 }))).toMatchObject({
      kind: 'refuse',
      reason: 'client-busy',
    });
  });

  it('names the path refusal', () => {
    expect(decideRequest(rrq({ filename: '../x' }), ctx())).toMatchObject({ detail: 'traversal' });
  });

  it('starts an octet read in any case, with negotiated options', () => {
    const d = decideRequest(rrq({ mode: 'OCTET', options: [{ name: 'tsize', value: '0' }] }), ctx());
    expect(d).toMatchObject({
      kind: 'start',
      file: FILE,
      negotiated: { blksize: 512, oack: [{ name: 'tsize', value: '1000' }] },
    });
  });
});
