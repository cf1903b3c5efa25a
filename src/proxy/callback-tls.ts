/**
 * The callback listener's TLS identity and the CA Ironic is told to trust (agent_verify_ca).
 *
 * Where it comes from (callbackTlsSource, pure), first match wins:
 * 1. `proxy.tlsCertFile` + `proxy.tlsKeyFile`: that certificate. The file holds the leaf and
 *    then its issuers; the LAST certificate in it is what Ironic gets as agent_verify_ca (the
 *    root of the chain, or the certificate itself when it is self-signed). With cert-manager,
 *    concatenate `tls.crt` and `ca.crt`. Replicas share it through a Secret.
 * 2. `proxy.stateDir`: a CA generated on first start and kept in `callback-ca.pem` and
 *    `callback-ca-key.pem` (0600), reused by every later start; a server certificate for the
 *    advertised host is issued from it at each start. The CA — the only thing Ironic pins — is
 *    stable across restarts; replicas share it by sharing the directory.
 * 3. `shared`: replicas with leader election (kube/callback-secret.ts): the leader keeps a CA and a
 *    serving certificate in a Secret; every replica serves that certificate when it names the
 *    replica's advertised host, else one it issues from the Secret's CA, and follows changes.
 * 4. None of these: the listener speaks plain HTTP, Ironic gets an http callback_url and no
 *    agent_verify_ca. A CA generated in memory would change at every restart, and Ironic
 *    refuses a heartbeat whose agent_verify_ca changed until the node reboots.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from './atomic-file.js';
import {
  checkKeyPair,
  generateCa,
  issueServerCertificate,
  splitPemCertificates,
  type KeyedCertificate,
} from './certificates.js';
import { MetalbootError } from '../base/errors.js';

/** A CA (with its key) and perhaps a serving certificate, as replicas share them. */
export interface SharedTlsMaterial {
  readonly ca: KeyedCertificate;
  /** Leaf then issuers, and its key; absent until the leader issued one. */
  readonly server: KeyedCertificate | undefined;
}

/** Where shared material comes from: the leader's Secret (kube/callback-secret.ts). */
export interface SharedTlsFeed {
  /** For logs: `Secret ns/name`. */
  readonly where: string;
  /** The current material, waiting for the first one (rejects when it does not come in time). */
  current(): Promise<SharedTlsMaterial>;
  /** `fn` is called with each new material after current() resolved. */
  subscribe(fn: (m: SharedTlsMaterial) => void): void;
}

export type CallbackTlsSource =
  | { readonly kind: 'files'; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: 'generated'; readonly stateDir: string }
  | { readonly kind: 'shared'; readonly feed: SharedTlsFeed }
  | { readonly kind: 'none' };

export function callbackTlsSource(
  p: {
    readonly tlsCertFile?: string | undefined;
    readonly tlsKeyFile?: string | undefined;
    readonly stateDir?: string | undefined;
  },
  shared?: SharedTlsFeed,
): CallbackTlsSource {
  if (p.tlsCertFile !== undefined && p.tlsKeyFile !== undefined)
    return { kind: 'files', certFile: p.tlsCertFile, keyFile: p.tlsKeyFile };
  if (shared !== undefined) return { kind: 'shared', feed: shared };
  if (p.stateDir !== undefined) return { kind: 'generated', stateDir: p.stateDir };
  return { kind: 'none' };
}

export interface CallbackTls {
  /** Leaf then issuers, for the listener. */
  readonly certPem: string;
  readonly keyPem: string;
  /** What Ironic gets as agent_verify_ca. */
  readonly caPem: string;
  readonly source: 'files' | 'generated' | 'shared';
}

export const CA_FILE = 'callback-ca.pem';
export const CA_KEY_FILE = 'callback-ca-key.pem';

/** The trust anchor of a certificate bundle: its last certificate. Pure. */
export function trustAnchorOf(bundlePem: string): string | undefined {
  const certs = splitPemCertificates(bundlePem);
  return certs[certs.length - 1];
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new MetalbootError('PROXY_ERR_BAD_STATE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The CA kept in `stateDir`, if there is one (never creates it). */
export async function readExistingCa(stateDir: string): Promise<KeyedCertificate | undefined> {
  const certFile = path.join(stateDir, CA_FILE);
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(path.join(stateDir, CA_KEY_FILE))]);
  if (certPem === undefined || keyPem === undefined) return undefined;
  checkKeyPair(certPem, keyPem, certFile);
  return { certPem, keyPem };
}

/** Loads the CA from `stateDir`, generating and persisting it on first use. */
export async function loadOrCreateCa(stateDir: string, now: Date, logger: Logger): Promise<KeyedCertificate> {
  const certFile = path.join(stateDir, CA_FILE);
  const keyFile = path.join(stateDir, CA_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const { notAfter } = checkKeyPair(certPem, keyPem, certFile);
    if (notAfter.getTime() <= now.getTime())
      throw new MetalbootError(
        'PROXY_ERR_BAD_CERTIFICATE',
        `${certFile}: expired on ${notAfter.toISOString()}; remove it and its key to generate a new CA`,
      );
    return { certPem, keyPem };
  }
  if (certPem !== undefined || keyPem !== undefined) {
    throw new MetalbootError(
      'PROXY_ERR_BAD_STATE',
      `${stateDir}: only one of ${CA_FILE} and ${CA_KEY_FILE} exists; restore the other or remove both`,
    );
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const ca = await generateCa(now);
  // Key first: a crash between the two writes leaves a key without a certificate, which the
  // next start reports instead of silently pairing a new certificate with nothing.
  await writeFileAtomic(keyFile, ca.keyPem, 0o600);
  await writeFileAtomic(certFile, ca.certPem, 0o644);
  logger.info({ file: certFile }, 'generated the callback listener CA');
  return ca;
}

/** The listener's TLS material for `source`, or undefined for plain HTTP. */
export async function loadCallbackTls(
  source: CallbackTlsSource,
  o: { readonly hosts: readonly string[]; readonly now: Date; readonly logger: Logger },
): Promise<CallbackTls | undefined> {
  switch (source.kind) {
    case 'none':
      return undefined;
    case 'files': {
      let certPem: string;
      let keyPem: string;
      try {
        [certPem, keyPem] = await Promise.all([readFile(source.certFile, 'utf8'), readFile(source.keyFile, 'utf8')]);
      } catch (err) {
        throw new MetalbootError(
          'PROXY_ERR_BAD_CERTIFICATE',
          `cannot read the callback certificate: ${(err as Error).message}`,
          { cause: err },
        );
      }
      checkKeyPair(certPem, keyPem, source.certFile);
      return { certPem, keyPem, caPem: trustAnchorOf(certPem)!, source: 'files' };
    }
    case 'generated': {
      const ca = await loadOrCreateCa(source.stateDir, o.now, o.logger);
      const server = await issueServerCertificate(ca, o.hosts, o.now);
      return { certPem: server.certPem, keyPem: server.keyPem, caPem: ca.certPem, source: 'generated' };
    }
    case 'shared':
      return await tlsFromShared(await source.feed.current(), o.hosts, o.now);
  }
}

/**
 * The listener's TLS from shared material: the shared serving certificate when it is valid now
 * and names every one of `hosts`, else one issued here from the shared CA (replicas on host
 * networking advertise different addresses). Ironic always gets the shared CA.
 */
export async function tlsFromShared(m: SharedTlsMaterial, hosts: readonly string[], now: Date): Promise<CallbackTls> {
  const caPem = m.ca.certPem;
  if (m.server !== undefined && certificateCovers(m.server.certPem, hosts, now))
    return { certPem: m.server.certPem, keyPem: m.server.keyPem, caPem, source: 'shared' };
  const own = await issueServerCertificate(m.ca, hosts, now);
  return { certPem: own.certPem, keyPem: own.keyPem, caPem, source: 'shared' };
}

/** True when the bundle's leaf is valid at `now` and names every host (IP or DNS). Pure. */
export function certificateCovers(bundlePem: string, hosts: readonly string[], now: Date): boolean {
  const leafPem = splitPemCertificates(bundlePem)[0];
  if (leafPem === undefined) return false;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch {
    return false;
  }
  const t = now.getTime();
  if (new Date(leaf.validFrom).getTime() > t || new Date(leaf.validTo).getTime() <= t) return false;
  return hosts.every((h) => (isIP(h) === 0 ? leaf.checkHost(h) !== undefined : leaf.checkIP(h) !== undefined));
}
