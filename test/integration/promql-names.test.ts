/** test/support/promql-names.ts: which metrics and labels a PromQL expression names. */
import { describe, expect, it } from 'vitest';
import { promqlNames, PromqlNamesError } from '../support/promql-names.js';

const metrics = (expr: string) => promqlNames(expr).selectors.map((s) => s.metric);

describe('promqlNames', () => {
  it.each([
    ['a bare metric', 'metalboot_leader', ['metalboot_leader']],
    ['a metric with matchers and a range', 'rate(a_total{reason="x"}[5m])', ['a_total']],
    ['Grafana variables in matchers and ranges', 'rate(a_total{pod=~"$pod"}[$__rate_interval])', ['a_total']],
    [
      'histogram_quantile over an aggregation',
      'histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))',
      ['x_seconds_bucket'],
    ],
    ['both sides of a binary operator', 'a_total / on (pod) group_left (node) b_info offset 5m', ['a_total', 'b_info']],
    ['or with absent()', 'up{job="mb"} == 0 or absent(up{job="mb"})', ['up', 'up']],
    ['keywords, numbers and functions are not metrics', 'count(a == bool 0) or vector(0) > inf', ['a']],
    ['a subquery', 'max_over_time(rate(a_total[5m])[1h:5m])', ['a_total']],
    ['__name__ as a matcher', '{__name__="a_total", job="x"}', ['a_total']],
    ['braces and words inside strings', 'a_total{x="sum by (y) {z} b_total"}', ['a_total']],
    ['a comment', 'a_total # b_total\n+ c_total', ['a_total', 'c_total']],
    ['a metric named like a keyword prefix', 'bytes_total + order_total', ['bytes_total', 'order_total']],
  ])('finds the metrics of %s', (_name, expr, expected) => {
    expect(metrics(expr)).toEqual(expected);
  });

  it('reads matchers with their operator and unescaped value', () => {
    expect(promqlNames('a{reason=~"x|y", pod!="p", q!~"\\\\d+", s=\'z\'}').selectors).toEqual([
      {
        metric: 'a',
        matchers: [
          { label: 'reason', op: '=~', value: 'x|y' },
          { label: 'pod', op: '!=', value: 'p' },
          { label: 'q', op: '!~', value: '\\d+' },
          { label: 's', op: '=', value: 'z' },
        ],
      },
    ]);
  });

  it('scopes by and without to the aggregation they belong to, before or after its argument', () => {
    const { groupings } = promqlNames('sum by (reason) (rate(a[5m])) / sum(rate(b[5m])) without (pod)');
    expect(groupings.map((g) => [g.keyword, g.labels, g.selectors.map((s) => s.metric)])).toEqual([
      ['by', ['reason'], ['a']],
      ['without', ['pod'], ['b']],
    ]);
  });

  it('gives vector matching the whole expression, and nested aggregations their own scope', () => {
    const { groupings } = promqlNames('sum by (pod) (max by (pod, check) (a)) * on (pod) group_left b');
    expect(groupings.map((g) => [g.keyword, g.labels, g.selectors.map((s) => s.metric)])).toEqual([
      ['by', ['pod'], ['a']],
      ['by', ['pod', 'check'], ['a']],
      ['on', ['pod'], ['a', 'b']],
      ['group_left', [], ['a', 'b']],
    ]);
  });

  it.each([
    ['an unterminated string', 'a{x="y}'],
    ['unbalanced parentheses', 'sum(rate(a[5m])'],
    ['an unterminated range', 'rate(a[5m)'],
    ['a matcher without a value', 'a{x=}'],
    ['an aggregation without an argument', 'sum by (x)'],
  ])('throws on %s', (_name, expr) => {
    expect(() => promqlNames(expr)).toThrow(PromqlNamesError);
  });
});
