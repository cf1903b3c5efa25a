import { beforeAll, describe, expect, it } from 'vitest';
import { generateCa } from './certificates.js';
import { isCertificatePem, rewriteHeartbeat, type HeartbeatContext } from './heartbeat.js';

const CALLBACK = 'https://172.22.0.2:8081/nodes/n1';
const callbackUrlFor = (agent: string): string => `${CALLBACK}/${agent}`;
let agentCa: string;
let ourCa: string;

beforeAll(async () => {
  agentCa = (await generateCa(new Date(), { commonName: 'ipa' })).certPem;
  ourCa = (await generateCa(new Date())).certPem;
});

const ctx = (over: Partial<HeartbeatContext> = {}): HeartbeatContext => ({
  callbackUrlFor,
  source: '192.0.2.10',
  own: { addresses: ['172.22.0.2'], ports: [8080, 8081] },
  listenerCaPem: ourCa,
  microversion: [1, 68],
  ...over,
});
const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('rewriteHeartbeat', () => {
  it('swaps callback_url and agent_verify_ca and keeps the token and the rest', () => {
    const out = rewriteHeartbeat(
      body({
        callback_url: 'https://192.0.2.10:9999',
        agent_token: 'tok',
        agent_version: '10.1.0',
        agent_verify_ca: agentCa,
        agent_status: 'start',
      }),
      ctx(),
    );
    expect(out.kind).toBe('rewrite');
    if (out.kind !== 'rewrite') return;
    expect(JSON.parse(out.body.toString())).toEqual({
      callback_url: callbackUrlFor(out.agent.id),
      agent_token: 'tok',
      agent_version: '10.1.0',
      agent_verify_ca: ourCa,
      agent_status: 'start',
    });
    expect(out.agent).toMatchObject({ url: 'https://192.0.2.10:9999', caPem: agentCa });
    expect(out.sentCa).toBe(true);
  });

  it('sends the listener CA even when IPA sent none (plain-HTTP IPA)', () => {
    const out = rewriteHeartbeat(body({ callback_url: 'http://192.0.2.10:9999', agent_token: 'tok' }), ctx());
    expect(out.kind === 'rewrite' && JSON.parse(out.body.toString()).agent_verify_ca).toBe(ourCa);
    expect(out.kind === 'rewrite' && out.agent.caPem).toBeUndefined();
  });

  it('drops agent_verify_ca for a plain-HTTP listener', () => {
    const out = rewriteHeartbeat(
      body({ callback_url: 'https://192.0.2.10:9999', agent_token: 'tok', agent_verify_ca: agentCa }),
      ctx({ listenerCaPem: undefined, callbackUrlFor: (a) => `http://172.22.0.2:8081/nodes/n1/${a}` }),
    );
    expect(out.kind).toBe('rewrite');
    if (out.kind !== 'rewrite') return;
    expect(JSON.parse(out.body.toString())).toEqual({
      callback_url: `http://172.22.0.2:8081/nodes/n1/${out.agent.id}`,
      agent_token: 'tok',
    });
    expect(out.agent.caPem).toBe(agentCa);
    expect(out.sentCa).toBe(false);
  });

  it.each([[[1, 62] as const], [undefined]])('does not add agent_verify_ca below microversion 1.68 (%j)', (mv) => {
    const out = rewriteHeartbeat(
      body({ callback_url: 'http://192.0.2.10:9999', agent_token: 'tok' }),
      ctx({ microversion: mv }),
    );
    expect(out.kind === 'rewrite' && 'agent_verify_ca' in JSON.parse(out.body.toString())).toBe(false);
  });

  it('passes an empty callback_url (one-way heartbeat) through untouched', () => {
    const raw = body({ callback_url: '', agent_token: 'tok', agent_status: 'end' });
    expect(rewriteHeartbeat(raw, ctx())).toEqual({ kind: 'passthrough', body: raw, reason: 'empty-callback-url' });
  });

  it.each([
    ['not json', Buffer.from('{"callback_url":'), 'not JSON'],
    ['an array', body([1]), 'not a JSON object'],
    ['null', body(null), 'not a JSON object'],
    ['no callback_url', body({ agent_token: 't' }), 'callback_url is missing'],
    ['a numeric callback_url', body({ callback_url: 9999 }), 'callback_url is missing'],
    ['a file URL', body({ callback_url: 'file:///etc/passwd' }), 'not an http(s) URL'],
    ['credentials in the URL', body({ callback_url: 'http://u:p@192.0.2.10:9999' }), 'not an http(s) URL'],
    [
      'a non-string CA',
      body({ callback_url: 'https://192.0.2.10:9999', agent_verify_ca: 5 }),
      'agent_verify_ca is not a string',
    ],
    [
      'garbage CA',
      body({
        callback_url: 'https://192.0.2.10:9999',
        agent_verify_ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
      }),
      'not a PEM certificate',
    ],
  ])('refuses %s', (_name, raw, reason) => {
    const out = rewriteHeartbeat(raw, ctx());
    expect(out.kind).toBe('invalid');
    expect(out.kind === 'invalid' && out.reason).toContain(reason);
  });

  it("gives Ironic a callback URL that changes exactly when the agent's URL or certificate does", () => {
    const urlOf = (callback_url: string, ca: string | undefined): string => {
      const out = rewriteHeartbeat(body({ callback_url, agent_token: 'tok', agent_verify_ca: ca }), ctx());
      if (out.kind !== 'rewrite') throw new Error(out.kind);
      return JSON.parse(out.body.toString()).callback_url;
    };
    const first = urlOf('https://192.0.2.10:9999', agentCa);
    expect(first).toMatch(new RegExp(`^${CALLBACK}/[0-9a-f]{32}$`));
    // The same agent, spelled as IPA may spell it, every time: the same URL, so Ironic accepts it.
    expect(urlOf('https://192.0.2.10:9999/', `${agentCa}\n`)).toBe(first);
    // Another port, another scheme, another certificate, none: Ironic sees a changed callback_url.
    const others = [
      urlOf('https://192.0.2.10:9998', agentCa),
      urlOf('http://192.0.2.10:9999', agentCa),
      urlOf('https://192.0.2.10:9999', ourCa),
      urlOf('https://192.0.2.10:9999', undefined),
    ];
    expect(new Set([first, ...others]).size).toBe(5);
  });

  it.each([
    ['another host', 'https://192.0.2.99:9999', '192.0.2.10', 'agent-not-source'],
    ['a host name', 'https://ipa.example:9999', '192.0.2.10', 'agent-not-source'],
    ['the callback listener', 'https://172.22.0.2:8081', '172.22.0.2', 'agent-is-metalboot'],
    ['the HTTP listener on loopback', 'http://127.0.0.1:8080', '127.0.0.1', 'agent-is-metalboot'],
  ] as const)('refuses an agent URL naming %s before Ironic sees it', (_name, callback_url, source, reason) => {
    const out = rewriteHeartbeat(body({ callback_url, agent_token: 'tok' }), ctx({ source }));
    expect(out).toMatchObject({ kind: 'refused', reason });
  });

  it.each([
    ['an IPv4-mapped source', 'https://192.0.2.10:9999', '::ffff:192.0.2.10'],
    ['IPv6', 'https://[2001:db8::10]:9999', '2001:db8:0:0::10'],
    ["an agent on metalboot's machine at a port of its own", 'https://172.22.0.2:9999', '172.22.0.2'],
  ])('accepts %s', (_name, callback_url, source) => {
    expect(rewriteHeartbeat(body({ callback_url, agent_token: 'tok' }), ctx({ source })).kind).toBe('rewrite');
  });

  it('normalises the agent URL', () => {
    const out = rewriteHeartbeat(body({ callback_url: 'HTTPS://192.0.2.10:9999/', agent_token: 't' }), ctx());
    expect(out.kind === 'rewrite' && out.agent.url).toBe('https://192.0.2.10:9999');
  });
});

describe('isCertificatePem', () => {
  it('accepts certificates and refuses other text', () => {
    expect(isCertificatePem(agentCa)).toBe(true);
    expect(isCertificatePem(`${agentCa}\n${ourCa}`)).toBe(true);
    expect(isCertificatePem('hello')).toBe(false);
  });
});
