import { describe, expect, it } from 'vitest';
import { confirmedLookupMacs, lookupAnswerForIpa, lookupNodeUuid } from './lookup.js';
import { parseBaseUrl } from './proxy-urls.js';

const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';

describe('confirmedLookupMacs', () => {
  it.each<[string, string, string[]]>([
    ['one address', '?addresses=52:54:00:AA:00:01', ['52:54:00:aa:00:01']],
    ['one address with dashes', '?addresses=52-54-00-aa-00-01', ['52:54:00:aa:00:01']],
    ['the same address twice', '?addresses=52:54:00:aa:00:01,52:54:00:AA:00:01', ['52:54:00:aa:00:01']],
    ['two addresses', '?addresses=52:54:00:aa:00:01,52:54:00:aa:00:02', []],
    ['one address and a made-up entry', '?addresses=52:54:00:aa:00:01,not-a-mac', []],
    ['one address and node_uuid', `?addresses=52:54:00:aa:00:01&node_uuid=${NODE}`, []],
    ['node_uuid only', `?node_uuid=${NODE}`, []],
    ['the parameter twice', '?addresses=52:54:00:aa:00:01&addresses=52:54:00:aa:00:02', []],
    ['no valid address', '?addresses=zz', []],
    ['nothing', '', []],
  ])('%s', (_name, search, want) => {
    expect(confirmedLookupMacs(search)).toEqual(want);
  });
});

describe('the lookup answer', () => {
  const ironic = parseBaseUrl('http://ironic.internal:6385', 'i');
  const ours = parseBaseUrl('http://172.22.0.2:8080', 'a');
  const answer = (base: string) => ({
    node: {
      uuid: NODE,
      properties: { cpu_arch: 'x86_64' },
      instance_info: {},
      driver_internal_info: { agent_url: null },
      links: [
        { href: `${base}/v1/nodes/${NODE}`, rel: 'self' },
        { href: `${base}/nodes/${NODE}`, rel: 'bookmark' },
      ],
    },
    config: { heartbeat_timeout: 300, agent_token: '******', agent_token_required: true },
  });

  it.each(['http://ironic.internal:6385', 'https://ironic.public.example:6385'])(
    "drops the node's links to Ironic (%s) and keeps the rest",
    (base) => {
      const out = lookupAnswerForIpa(answer(base), ironic, ours);
      expect(JSON.stringify(out)).not.toContain(new URL(base).host);
      const { links: _l, ...node } = answer(base).node;
      expect(out).toEqual({ node, config: answer(base).config });
    },
  );

  it('leaves documents of another shape alone', () => {
    expect(lookupAnswerForIpa([1], ironic, ours)).toEqual([1]);
    expect(lookupAnswerForIpa({ node: 'x' }, ironic, ours)).toEqual({ node: 'x' });
  });

  it.each<[unknown, string | undefined]>([
    [{ node: { uuid: NODE } }, NODE],
    [{ node: { uuid: '../x' } }, undefined],
    [{ node: {} }, undefined],
    [{}, undefined],
    [null, undefined],
  ])('finds the node of %j', (doc, want) => {
    expect(lookupNodeUuid(doc)).toBe(want);
  });
});
