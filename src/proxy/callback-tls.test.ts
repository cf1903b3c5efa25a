import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { generateCa, issueServerCertificate, splitPemCertificates } from './certificates.js';
import { CA_FILE, CA_KEY_FILE, callbackTlsSource, loadCallbackTls, trustAnchorOf } from './callback-tls.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'metalboot-tls-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Handshakes with a server using `cert`/`key`, trusting only `ca`, checking `host`. */
async function handshake(cert: string, key: string, ca: string, host: string): Promise<string | undefined> {
  const server = tls.createServer({ cert, key }, (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise<string | undefined>((resolve) => {
      const c = tls.connect(
        {
          host: '127.0.0.1',
          port,
          ca,
          servername: host === '127.0.0.1' ? undefined : host,
          checkServerIdentity: (_h, peer) => tls.checkServerIdentity(host, peer),
        },
        () => {
          c.end();
          resolve(undefined);
        },
      );
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
  } finally {
    server.close();
  }
}

describe('callbackTlsSource', () => {
  it.each([
    [
      { tlsCertFile: 'c', tlsKeyFile: 'k', stateDir: '/s' },
      { kind: 'files', certFile: 'c', keyFile: 'k' },
    ],
    [{ stateDir: '/s' }, { kind: 'generated', stateDir: '/s' }],
    [{}, { kind: 'none' }],
  ])('%j', (p, expected) => {
    expect(callbackTlsSource(p)).toEqual(expected);
  });
});

describe('certificates', () => {
  it('issues a server certificate that verifies against the CA, for an IP and a DNS name', async () => {
    const now = new Date();
    const ca = await generateCa(now);
    const server = await issueServerCertificate(ca, ['127.0.0.1'], now);
    expect(splitPemCertificates(server.certPem)).toHaveLength(2);
    expect(await handshake(server.certPem, server.keyPem, ca.certPem, '127.0.0.1')).toBeUndefined();
    expect(await handshake(server.certPem, server.keyPem, ca.certPem, '127.0.0.2')).toBe(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
    const named = await issueServerCertificate(ca, ['metalboot.example'], now);
    expect(await handshake(named.certPem, named.keyPem, ca.certPem, 'metalboot.example')).toBeUndefined();
    const other = await generateCa(now);
    expect(await handshake(server.certPem, server.keyPem, other.certPem, '127.0.0.1')).toMatch(
      /UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF)|SELF_SIGNED_CERT_IN_CHAIN/,
    );
  });

  it('marks the CA as a CA and the server certificate as a server', async () => {
    const now = new Date();
    const ca = await generateCa(now);
    const server = await issueServerCertificate(ca, ['127.0.0.1'], now);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    const leaf = new X509Certificate(splitPemCertificates(server.certPem)[0]!);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toBe('IP Address:127.0.0.1');
    expect(leaf.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
  });
});

describe('loadCallbackTls', () => {
  it('generates the CA once and reuses it on every later start', async () => {
    const dir = tmp();
    const a = await loadCallbackTls(
      { kind: 'generated', stateDir: dir },
      { hosts: ['127.0.0.1'], now: new Date(), logger },
    );
    const b = await loadCallbackTls(
      { kind: 'generated', stateDir: dir },
      { hosts: ['127.0.0.1'], now: new Date(), logger },
    );
    expect(a?.caPem).toBe(readFileSync(path.join(dir, CA_FILE), 'utf8'));
    expect(b?.caPem).toBe(a?.caPem);
    expect(b?.certPem).not.toBe(a?.certPem);
    expect(statSync(path.join(dir, CA_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(await handshake(b!.certPem, b!.keyPem, a!.caPem, '127.0.0.1')).toBeUndefined();
  });

  it('refuses a state directory holding a CA without its key', async () => {
    const dir = tmp();
    await loadCallbackTls({ kind: 'generated', stateDir: dir }, { hosts: ['127.0.0.1'], now: new Date(), logger });
    rmSync(path.join(dir, CA_KEY_FILE));
    await expect(
      loadCallbackTls({ kind: 'generated', stateDir: dir }, { hosts: ['127.0.0.1'], now: new Date(), logger }),
    ).rejects.toMatchObject({ code: 'PROXY_ERR_BAD_STATE' });
  });

  it('uses configured files and gives Ironic the last certificate of the chain', async () => {
    const dir = tmp();
    const now = new Date();
    const ca = await generateCa(now);
    const server = await issueServerCertificate(ca, ['127.0.0.1'], now);
    writeFileSync(path.join(dir, 'tls.crt'), server.certPem);
    writeFileSync(path.join(dir, 'tls.key'), server.keyPem);
    const t = await loadCallbackTls(
      { kind: 'files', certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
      { hosts: ['127.0.0.1'], now, logger },
    );
    expect(t?.caPem.trim()).toBe(ca.certPem.trim());
    expect(trustAnchorOf(server.certPem)?.trim()).toBe(ca.certPem.trim());
  });

  it('refuses a key that does not match the certificate', async () => {
    const dir = tmp();
    const now = new Date();
    const ca = await generateCa(now);
    const a = await issueServerCertificate(ca, ['127.0.0.1'], now);
    const b = await issueServerCertificate(ca, ['127.0.0.1'], now);
    writeFileSync(path.join(dir, 'tls.crt'), a.certPem);
    writeFileSync(path.join(dir, 'tls.key'), b.keyPem);
    await expect(
      loadCallbackTls(
        { kind: 'files', certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
        { hosts: [], now, logger },
      ),
    ).rejects.toMatchObject({ code: 'PROXY_ERR_BAD_CERTIFICATE' });
  });

  it('is plain HTTP without a source', async () => {
    expect(await loadCallbackTls({ kind: 'none' }, { hosts: [], now: new Date(), logger })).toBeUndefined();
  });
});
