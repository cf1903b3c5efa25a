import { describe, expect, it } from 'vitest';
import { agentApiRoute, agentIdOf, agentRequestTarget, nodeCallbackUrl, parseCallbackTarget } from './callback-url.js';
import { parseBaseUrl } from './proxy-urls.js';

const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const AGENT = agentIdOf('https://192.0.2.10:9999', 'PEM');

describe('agentIdOf', () => {
  it('names an agent by its URL and certificate, whitespace around the certificate aside', () => {
    expect(AGENT).toMatch(/^[0-9a-f]{32}$/);
    expect(agentIdOf('https://192.0.2.10:9999', '\nPEM\n')).toBe(AGENT);
    expect(agentIdOf('https://192.0.2.10:9999', 'PEM2')).not.toBe(AGENT);
    expect(agentIdOf('https://192.0.2.10:9999', undefined)).not.toBe(AGENT);
    expect(agentIdOf('https://192.0.2.11:9999', 'PEM')).not.toBe(AGENT);
  });
});

describe('nodeCallbackUrl', () => {
  it('depends only on the advertised URL, the node and the agent', () => {
    const base = parseBaseUrl('https://172.22.0.2:8081', 'x');
    expect(nodeCallbackUrl(base, NODE, AGENT)).toBe(`https://172.22.0.2:8081/nodes/${NODE}/${AGENT}`);
    expect(nodeCallbackUrl(parseBaseUrl('https://172.22.0.2:8081/', 'x'), NODE, AGENT)).toBe(
      nodeCallbackUrl(base, NODE, AGENT),
    );
    expect(nodeCallbackUrl(parseBaseUrl('https://lb.example/ipa', 'x'), NODE, AGENT)).toBe(
      `https://lb.example/ipa/nodes/${NODE}/${AGENT}`,
    );
  });
});

describe('parseCallbackTarget', () => {
  const at = `/nodes/${NODE}/${AGENT}`;
  it.each([
    [`${at}/v1/commands/?wait=true&agent_token=t`, '/v1/commands/', '?wait=true&agent_token=t'],
    [`${at}//v1/commands/?wait=false`, '/v1/commands/', '?wait=false'],
    [`${at}/v1/commands/abc-123`, '/v1/commands/abc-123', ''],
    [`${at}/v1/status`, '/v1/status', ''],
    [at, '', ''],
    [`${at}/`, '/', ''],
    [`${at}/v1/commands/%41`, '/v1/commands/%41', ''],
  ])('%s → %s %s', (raw, path, search) => {
    expect(parseCallbackTarget(raw, '')).toEqual({ kind: 'node', node: NODE, agent: AGENT, path, search });
  });

  it.each([
    ['/v1/commands/', 'not-under-nodes'],
    ['/nodesx/a/v1', 'not-under-nodes'],
    ['/nodes/', 'bad-node'],
    ['/nodes/../v1/commands/', 'bad-node'],
    ['/nodes/%2e%2e/v1/commands/', 'bad-node'],
    [`/nodes/${NODE}`, 'bad-agent'],
    [`/nodes/${NODE}/v1/commands/`, 'bad-agent'],
    [`/nodes/${NODE}//${AGENT}/v1/status`, 'bad-agent'],
    [`/nodes/${NODE}/${AGENT.toUpperCase()}/v1/status`, 'bad-agent'],
    [`/nodes/${NODE}/${AGENT}0/v1/status`, 'bad-agent'],
    [`${at}/../other/v1/status`, 'bad-path'],
    [`${at}/v1/%2e%2e/%2e%2e/etc`, 'bad-path'],
    [`${at}/v1/a%2fb`, 'bad-path'],
    [`${at}/v1/a%5cb`, 'bad-path'],
    [`${at}/v1/%zz`, 'bad-path'],
    [`${at}/v1/%00`, 'bad-path'],
    [`${at}/./v1/status`, 'bad-path'],
  ] as const)('refuses %s (%s)', (raw, reason) => {
    expect(parseCallbackTarget(raw, '')).toEqual({ kind: 'refused', reason });
  });

  it('honours the advertised base path', () => {
    expect(parseCallbackTarget(`/ipa${at}/v1/status`, '/ipa')).toMatchObject({ kind: 'node', path: '/v1/status' });
    expect(parseCallbackTarget(`${at}/v1/status`, '/ipa')).toEqual({ kind: 'refused', reason: 'not-under-nodes' });
  });
});

describe('agentApiRoute', () => {
  it.each([
    ['GET', '', 'root'],
    ['GET', '/', 'root'],
    ['GET', '/v1/', 'v1'],
    ['GET', '/v1/status', 'status'],
    ['GET', '/v1/commands/', 'list-commands'],
    ['GET', '/v1/commands/0c3d8d4e-7d2b-4a3c-9c61-08d1bfb1e2a4', 'get-command'],
    ['POST', '/v1/commands/', 'run-command'],
  ])("%s %j is IPA's %s", (method, path, route) => {
    expect(agentApiRoute(method, path)).toBe(route);
  });

  it.each([
    ['POST', ''],
    ['POST', '/anything'],
    ['POST', '/v1/status'],
    ['POST', '/v1/commands/abc'],
    ['PUT', '/v1/commands/'],
    ['DELETE', '/v1/commands/'],
    ['PATCH', '/v1/commands/abc'],
    ['HEAD', '/v1/status'],
    ['OPTIONS', '/v1/commands/'],
    ['GET', '/v1'],
    ['GET', '/v1/commands'],
    ['GET', '/v1/commands/abc/def'],
    ['GET', '/v1/nodes'],
    ['GET', '/v2/'],
    ['GET', '/status'],
    ['GET', '/commands/'],
    ['GET', '/metrics'],
  ])("%s %j is not IPA's API", (method, path) => {
    expect(agentApiRoute(method, path)).toBeUndefined();
  });
});

describe('agentRequestTarget', () => {
  it('joins the agent URL and the canonical path', () => {
    const agent = parseBaseUrl('https://192.0.2.10:9999', 'a');
    expect(agentRequestTarget(agent, '/v1/commands/', '?wait=true')).toEqual({
      origin: 'https://192.0.2.10:9999',
      path: '/v1/commands/?wait=true',
    });
    expect(agentRequestTarget(agent, '', '')).toEqual({ origin: 'https://192.0.2.10:9999', path: '/' });
  });
});
