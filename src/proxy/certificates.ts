/**
 * Certificate generation for the callback listener: a private CA (generated once, persisted)
 * and a server certificate it signs for the advertised host (issued at each start). EC P-256
 * keys from Node's WebCrypto, certificates built by @peculiar/x509, which needs the Reflect
 * metadata polyfill loaded before it (its dependency injection container checks at import).
 *
 * Extensions follow what strict verifiers (OpenSSL's X509_STRICT, on by default from Python
 * 3.13, which Ironic's requests use) ask for: the CA has critical basicConstraints CA:TRUE,
 * critical keyUsage keyCertSign/cRLSign and a subject key identifier; the server certificate
 * has CA:FALSE, digitalSignature, serverAuth, the authority key identifier and a
 * subjectAltName (IP or DNS) for the advertised host.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate as NodeX509, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { MetalbootError } from '../base/errors.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface KeyedCertificate {
  /** PEM certificate (for a server: the leaf followed by its issuers). */
  readonly certPem: string;
  /** PKCS#8 PEM private key. */
  readonly keyPem: string;
}

/** Positive 16-byte serial number in hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function keyPemOf(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importSigningKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  // Node parses any PEM key shape (PKCS#8, SEC1); WebCrypto takes PKCS#8 DER.
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

/** A new CA for the callback listener, valid for `validDays` from `now`. */
export async function generateCa(
  now: Date,
  opts: { readonly commonName?: string; readonly validDays?: number } = {},
): Promise<KeyedCertificate> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${opts.commonName ?? 'metalboot callback CA'}`,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + (opts.validDays ?? 3650 * 3) * DAY),
    keys: keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPemOf(keys.privateKey) };
}

/** A server certificate for `hosts` (IP literals or DNS names) signed by `ca`. */
export async function issueServerCertificate(
  ca: KeyedCertificate,
  hosts: readonly string[],
  now: Date,
  validDays = 825,
): Promise<KeyedCertificate> {
  if (hosts.length === 0)
    throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', 'a server certificate needs at least one host');
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await importSigningKey(ca.keyPem);
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const names = hosts.map((h) => ({ type: isIP(h) === 0 ? ('dns' as const) : ('ip' as const), value: h }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hosts[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(Math.min(now.getTime() + validDays * DAY, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: signingKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n${ca.certPem.trim()}\n`, keyPem: await keyPemOf(keys.privateKey) };
}

/** The PEM certificates in a bundle, in order. Pure. */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => `${b}\n`);
}

/**
 * Checks that `certPem` (a bundle, leaf first) and `keyPem` belong together and that every
 * certificate parses; returns the leaf's expiry. Throws PROXY_ERR_BAD_CERTIFICATE.
 */
export function checkKeyPair(certPem: string, keyPem: string, what: string): { readonly notAfter: Date } {
  const blocks = splitPemCertificates(certPem);
  if (blocks.length === 0) throw new MetalbootError('PROXY_ERR_BAD_CERTIFICATE', `${what}: no PEM certificate found`);
  try {
    const leaf = new NodeX509(blocks[0]!);
    for (const b of blocks.slice(1)) new NodeX509(b);
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
      throw new MetalbootError('PROXY_ERR_BAD_CERTIFICATE', `${what}: the private key does not match the certificate`);
    return { notAfter: new Date(leaf.validTo) };
  } catch (err) {
    if (err instanceof MetalbootError) throw err;
    throw new MetalbootError('PROXY_ERR_BAD_CERTIFICATE', `${what}: ${(err as Error).message}`, { cause: err });
  }
}
