/**
 * The pure parts of the state replicas share: range leases as Lease objects, the callback CA
 * Secret and its rotation, agent record ConfigMap names. The API round trips are in
 * test/integration/replicas.test.ts, against the API server fixture.
 */
import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { generateCa, issueServerCertificate } from '../proxy/certificates.js';
import { certificateCovers, tlsFromShared } from '../proxy/callback-tls.js';
import { agentConfigMapName } from './agent-records.js';
import { materialOfSecret, rotationNeeded, secretOfMaterial } from './callback-secret.js';
import { leaseNameOf, leaseOfRecord, recordOfLease } from './range-leases.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-04T12:00:00Z');

describe('range leases as Lease objects', () => {
  it('names one Lease per address, a DNS subdomain', () => {
    expect(leaseNameOf('metalboot-dhcp', '10.0.0.5')).toBe('metalboot-dhcp-10-0-0-5');
    expect(leaseNameOf('metalboot-dhcp6', 'fd00::5')).toBe('metalboot-dhcp6-fd000000000000000000000000000005');
  });

  it('round-trips binds, infinite binds and quarantines', () => {
    for (const rec of [
      { t: 'bind', ip: '10.0.0.5', mac: '52:54:00:00:00:01', exp: NOW + 3_600_000 },
      { t: 'bind', ip: '10.0.0.6', mac: '52:54:00:00:00:02', exp: null },
      { t: 'decline', ip: '10.0.0.7', until: NOW + 600_000 },
    ] as const) {
      const l = leaseOfRecord('p', 'ns', rec, NOW, undefined);
      expect(recordOfLease(l)).toEqual(rec);
      expect(l.metadata?.labels?.['metalboot.io/dhcp-range']).toBe('p');
      expect(l.metadata?.resourceVersion).toBeUndefined();
    }
    const l = leaseOfRecord('p', 'ns', { t: 'bind', ip: '10.0.0.5', mac: 'm', exp: NOW + 3_600_000 }, NOW, '42');
    expect(l.metadata?.resourceVersion).toBe('42');
    expect(l.spec?.holderIdentity).toBe('m');
    expect(l.spec?.leaseDurationSeconds).toBe(3600);
  });

  it('ignores Leases that are not range leases', () => {
    expect(recordOfLease({ metadata: { name: 'x' }, spec: { holderIdentity: 'a' } })).toBeUndefined();
    expect(
      recordOfLease({
        metadata: { annotations: { 'metalboot.io/address': '10.0.0.5', 'metalboot.io/expires': 'soon' } },
        spec: { holderIdentity: 'a' },
      }),
    ).toBeUndefined();
  });
});

describe('the callback CA Secret', () => {
  it('round-trips the CA and the serving certificate, and refuses a Secret without a usable CA', async () => {
    const ca = await generateCa(new Date(NOW));
    const server = await issueServerCertificate(ca, ['192.0.2.10'], new Date(NOW));
    const s = secretOfMaterial('ns', 'x-callback-tls', { ca, server }, undefined);
    expect(s.type).toBe('kubernetes.io/tls');
    expect(materialOfSecret(s)).toEqual({ ca, server });
    expect(materialOfSecret({ data: { 'tls.crt': s.data!['tls.crt']! } })).toBeUndefined();
    const other = await generateCa(new Date(NOW));
    // A CA whose key is another CA's: unusable.
    expect(materialOfSecret({ data: { ...s.data, 'ca.key': Buffer.from(other.keyPem).toString('base64') } })).toBe(
      undefined,
    );
  });

  it('rotates what is missing, expiring or no longer names the host', async () => {
    const ca = await generateCa(new Date(NOW));
    const server = await issueServerCertificate(ca, ['192.0.2.10'], new Date(NOW));
    const hosts = ['192.0.2.10'];
    expect(rotationNeeded(undefined, hosts, NOW)).toBe('create');
    expect(rotationNeeded({ ca, server: undefined }, hosts, NOW)).toBe('server-missing');
    expect(rotationNeeded({ ca, server }, hosts, NOW)).toBeUndefined();
    expect(rotationNeeded({ ca, server }, ['192.0.2.11'], NOW)).toBe('server-hosts');
    // 825 days of validity (from a day before NOW): due with less than a third left.
    expect(rotationNeeded({ ca, server }, hosts, NOW + 540 * DAY)).toBeUndefined();
    expect(rotationNeeded({ ca, server }, hosts, NOW + 560 * DAY)).toBe('server-expiring');
    const shortCa = await generateCa(new Date(NOW), { validDays: 60 });
    expect(rotationNeeded({ ca: shortCa, server }, hosts, NOW)).toBe('ca-expiring');
  });

  it('serves the shared certificate when it names the host, else one issued from the shared CA', async () => {
    const ca = await generateCa(new Date(NOW));
    const server = await issueServerCertificate(ca, ['192.0.2.10'], new Date(NOW));
    const same = await tlsFromShared({ ca, server }, ['192.0.2.10'], new Date(NOW));
    expect(same.certPem).toBe(server.certPem);
    expect(same.caPem).toBe(ca.certPem);
    const own = await tlsFromShared({ ca, server }, ['192.0.2.99'], new Date(NOW));
    expect(own.certPem).not.toBe(server.certPem);
    expect(own.caPem).toBe(ca.certPem);
    const leaf = new X509Certificate(own.certPem);
    expect(leaf.checkIP('192.0.2.99')).toBe('192.0.2.99');
    expect(leaf.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(certificateCovers(server.certPem, ['192.0.2.10'], new Date(NOW + 900 * DAY))).toBe(false);
    expect(certificateCovers('not a certificate', ['192.0.2.10'], new Date(NOW))).toBe(false);
  });
});

describe('agent record ConfigMaps', () => {
  it('names a ConfigMap per node from a hash, whatever characters the node name has', () => {
    const a = agentConfigMapName('x-agent', 'Node_One~with.Odd');
    expect(a).toMatch(/^x-agent-[0-9a-f]{20}$/);
    expect(agentConfigMapName('x-agent', 'Node_One~with.Odd')).toBe(a);
    expect(agentConfigMapName('x-agent', 'node-two')).not.toBe(a);
  });
});
