import { describe, expect, it } from 'vitest';
import { agentRequestTarget, nodeCallbackUrl, parseCallbackTarget } from './callback-url.js';
import { parseBaseUrl } from './proxy-urls.js';

const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';

describe('nodeCallbackUrl', () => {
  it('depends only on the advertised URL and the node', () => {
    const base = parseBaseUrl('https://172.22.0.2:8081', 'x');
    expect(nodeCallbackUrl(base, NODE)).toBe(`https://172.22.0.2:8081/nodes/${NODE}`);
    expect(nodeCallbackUrl(parseBaseUrl('https://172.22.0.2:8081/', 'x'), NODE)).toBe(nodeCallbackUrl(base, NODE));
    expect(nodeCallbackUrl(parseBaseUrl('https://lb.example/ipa', 'x'), NODE)).toBe(
      `https://lb.example/ipa/nodes/${NODE}`,
    );
  });
});

describe('parseCallbackTarget', () => {
  it.each([
    [`/nodes/${NODE}/v1/commands/?wait=true&agent_token=t`, '/v1/commands/', '?wait=true&agent_token=t'],
    [`/nodes/${NODE}//v1/commands/?wait=false`, '/v1/commands/', '?wait=false'],
    [`/nodes/${NODE}/v1/commands/abc-123`, '/v1/commands/abc-123', ''],
    [`/nodes/${NODE}/v1/status`, '/v1/status', ''],
    [`/nodes/${NODE}`, '', ''],
    [`/nodes/${NODE}/`, '/', ''],
    [`/nodes/${NODE}/v1/commands/%41`, '/v1/commands/%41', ''],
  ])('%s → %s %s', (raw, path, search) => {
    expect(parseCallbackTarget(raw, '')).toEqual({ kind: 'node', node: NODE, path, search });
  });

  it.each([
    ['/v1/commands/', 'not-under-nodes'],
    ['/nodesx/a/v1', 'not-under-nodes'],
    ['/nodes/', 'bad-node'],
    ['/nodes/../v1/commands/', 'bad-node'],
    ['/nodes/%2e%2e/v1/commands/', 'bad-node'],
    [`/nodes/${NODE}/../other/v1/status`, 'bad-path'],
    [`/nodes/${NODE}/v1/%2e%2e/%2e%2e/etc`, 'bad-path'],
    [`/nodes/${NODE}/v1/a%2fb`, 'bad-path'],
    [`/nodes/${NODE}/v1/a%5cb`, 'bad-path'],
    [`/nodes/${NODE}/v1/%zz`, 'bad-path'],
    [`/nodes/${NODE}/v1/%00`, 'bad-path'],
    [`/nodes/${NODE}/./v1/status`, 'bad-path'],
  ] as const)('refuses %s (%s)', (raw, reason) => {
    expect(parseCallbackTarget(raw, '')).toEqual({ kind: 'refused', reason });
  });

  it('honours the advertised base path', () => {
    expect(parseCallbackTarget(`/ipa/nodes/${NODE}/v1/status`, '/ipa')).toMatchObject({
      kind: 'node',
      path: '/v1/status',
    });
    expect(parseCallbackTarget(`/nodes/${NODE}/v1/status`, '/ipa')).toEqual({
      kind: 'refused',
      reason: 'not-under-nodes',
    });
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
