/** LabelledCounter: counted in plain numbers, added to the registered counter when it is collected. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LabelledCounter } from './labelled-counter.js';

describe('LabelledCounter', () => {
  it('shows what was counted at every scrape, once', async () => {
    const registry = new Registry();
    const c = new LabelledCounter<'a' | 'b'>({ name: 't_total', help: 'h', labelNames: ['k'], registers: [registry] });
    c.counter.inc({ k: 'b' }, 0);
    c.inc('a');
    c.inc('a', 2);
    const first = await registry.metrics();
    expect(first).toContain('t_total{k="a"} 3');
    expect(first).toContain('t_total{k="b"} 0');
    c.inc('b');
    const text = await registry.metrics();
    expect(text).toContain('t_total{k="a"} 3');
    expect(text).toContain('t_total{k="b"} 1');
    expect(await registry.metrics()).toBe(text);
  });

  it('counts pairs of label values, and still runs a collect of its own', async () => {
    const registry = new Registry();
    let collected = 0;
    const c = new LabelledCounter({
      name: 'p_total',
      help: 'h',
      labelNames: ['type', 'source'],
      registers: [registry],
      collect() {
        collected++;
      },
    });
    c.incPair('ack', 'bmh');
    c.incPair('ack', 'range');
    c.incPair('ack', 'bmh');
    const text = await registry.metrics();
    expect(text).toContain('p_total{type="ack",source="bmh"} 2');
    expect(text).toContain('p_total{type="ack",source="range"} 1');
    expect(collected).toBe(1);
  });
});
