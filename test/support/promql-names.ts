/**
 * What a PromQL expression queries, for the tests that hold the chart's dashboard and alerts to
 * metalboot's /metrics: every vector selector (metric name and label matchers) and every label
 * list of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`, with the
 * selectors each list applies to. Not a PromQL parser: a tokenizer that knows strings,
 * comments, range and subquery brackets, Grafana's `$variables`, and which identifiers are
 * keywords, aggregations or functions; anything else that names a series is a metric. It throws
 * on what it cannot read (an unterminated string, unbalanced brackets), never guesses.
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly label: string;
  readonly op: MatchOp;
  readonly value: string;
}

export interface Selector {
  /** The metric name; undefined for `{…}` without a name or `__name__` matcher. */
  readonly metric: string | undefined;
  readonly matchers: readonly Matcher[];
}

export interface Grouping {
  readonly keyword: 'by' | 'without' | 'on' | 'ignoring' | 'group_left' | 'group_right';
  readonly labels: readonly string[];
  /** The selectors it applies to: an aggregation's argument, or the whole expression for vector matching. */
  readonly selectors: readonly Selector[];
}

export interface PromqlNames {
  readonly selectors: readonly Selector[];
  readonly groupings: readonly Grouping[];
}

export class PromqlNamesError extends Error {
  readonly code = 'PROMQL_NAMES_ERR';
}

type Token =
  | { readonly kind: 'ident'; readonly text: string }
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'number' | 'var' | 'op'; readonly text: string }
  | { readonly kind: 'punct'; readonly text: '(' | ')' | '{' | '}' | ',' };

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const GROUPING_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

const IDENT = /^[A-Za-z_:][A-Za-z0-9_:]*/;
const NUMBER = /^(0x[0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?([smhdwy]|ms)*)/;
const VARIABLE = /^\$(\{[^}]+\}|[A-Za-z0-9_]+)/;
const OPERATOR = /^(==|!=|=~|!~|>=|<=|[-+*/%^<>=@])/;

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    const rest = expr.slice(i);
    if (/\s/.test(c)) i++;
    else if (c === '#') {
      const nl = expr.indexOf('\n', i);
      i = nl === -1 ? expr.length : nl + 1;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= expr.length) throw new PromqlNamesError(`unterminated string at ${i}: ${rest.slice(0, 40)}`);
        const d = expr[j]!;
        if (d === c) break;
        if (d === '\\' && c !== '`') {
          text += expr[j + 1] ?? '';
          j += 2;
        } else {
          text += d;
          j++;
        }
      }
      tokens.push({ kind: 'string', text });
      i = j + 1;
    } else if (c === '[') {
      // A range or subquery: `[5m]`, `[$__rate_interval]`, `[1h:5m]`. Nothing in it names a series.
      const j = expr.indexOf(']', i);
      if (j === -1) throw new PromqlNamesError(`unterminated [ at ${i}`);
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '{' || c === '}' || c === ',') {
      tokens.push({ kind: 'punct', text: c });
      i++;
    } else {
      const m =
        (IDENT.exec(rest) && { kind: 'ident' as const, text: IDENT.exec(rest)![0] }) ??
        (NUMBER.exec(rest) && { kind: 'number' as const, text: NUMBER.exec(rest)![0] }) ??
        (VARIABLE.exec(rest) && { kind: 'var' as const, text: VARIABLE.exec(rest)![0] }) ??
        (OPERATOR.exec(rest) && { kind: 'op' as const, text: OPERATOR.exec(rest)![0] });
      if (m === null) throw new PromqlNamesError(`cannot read at ${i}: ${rest.slice(0, 40)}`);
      tokens.push(m);
      i += m.text.length;
    }
  }
  return tokens;
}

/** The index of the `)` closing the `(` at `open`. */
function closing(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'punct') continue;
    if (t.text === '(') depth++;
    else if (t.text === ')' && --depth === 0) return i;
  }
  throw new PromqlNamesError('unbalanced parentheses');
}

const isPunct = (t: Token | undefined, text: string): boolean => t?.kind === 'punct' && t.text === text;

export function promqlNames(expr: string): PromqlNames {
  const tokens = tokenize(expr);
  /** Selectors by the index of their first token. */
  const selectors: { at: number; selector: Selector }[] = [];
  const groupings: { keyword: Grouping['keyword']; labels: string[]; scope: [number, number] | undefined }[] = [];

  /** Reads `( label, … )` at `open`; returns the labels and the index after `)`. */
  const labelList = (open: number): { labels: string[]; next: number } => {
    if (!isPunct(tokens[open], '(')) return { labels: [], next: open };
    const end = closing(tokens, open);
    const labels: string[] = [];
    for (let i = open + 1; i < end; i++) {
      const t = tokens[i]!;
      if (t.kind === 'ident' || t.kind === 'string') labels.push(t.text);
      else if (!isPunct(t, ',')) throw new PromqlNamesError(`not a label in a label list: ${t.text}`);
    }
    return { labels, next: end + 1 };
  };

  /** Reads `{ label op "value", … }` at `open`; returns the matchers and the index after `}`. */
  const matcherList = (open: number): { matchers: Matcher[]; next: number } => {
    const matchers: Matcher[] = [];
    let i = open + 1;
    for (;;) {
      const t = tokens[i];
      if (t === undefined) throw new PromqlNamesError('unterminated {');
      if (isPunct(t, '}')) return { matchers, next: i + 1 };
      if (isPunct(t, ',')) {
        i++;
        continue;
      }
      const op = tokens[i + 1];
      const value = tokens[i + 2];
      if (
        (t.kind !== 'ident' && t.kind !== 'string') ||
        op?.kind !== 'op' ||
        !['=', '!=', '=~', '!~'].includes(op.text) ||
        value?.kind !== 'string'
      )
        throw new PromqlNamesError(`not a label matcher: ${t.text} ${op?.text ?? ''} ${value?.text ?? ''}`);
      matchers.push({ label: t.text, op: op.text as MatchOp, value: value.text });
      i += 3;
    }
  };

  for (let i = 0; i < tokens.length; ) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t.kind === 'ident' && GROUPING_KEYWORDS.has(t.text)) {
      const { labels, next: after } = labelList(i + 1);
      const keyword = t.text as Grouping['keyword'];
      // by/without belong to an aggregation (scoped below); on/ignoring/group_* to a binary operator.
      if (keyword !== 'by' && keyword !== 'without') groupings.push({ keyword, labels, scope: undefined });
      i = after;
    } else if (t.kind === 'ident' && AGGREGATIONS.has(t.text)) {
      // `agg by (l) (expr)` or `agg (expr) by (l)`.
      let j = i + 1;
      let pending: { keyword: 'by' | 'without'; labels: string[] } | undefined;
      const grouping = tokens[j];
      if (grouping?.kind === 'ident' && (grouping.text === 'by' || grouping.text === 'without')) {
        const l = labelList(j + 1);
        pending = { keyword: grouping.text, labels: l.labels };
        j = l.next;
      }
      if (!isPunct(tokens[j], '(')) throw new PromqlNamesError(`${t.text} without an argument`);
      const end = closing(tokens, j);
      const after = tokens[end + 1];
      if (pending === undefined && after?.kind === 'ident' && (after.text === 'by' || after.text === 'without')) {
        pending = { keyword: after.text, labels: labelList(end + 2).labels };
      }
      if (pending !== undefined) groupings.push({ ...pending, scope: [j, end] });
      i = j;
    } else if (t.kind === 'ident' && isPunct(next, '(')) {
      i++; // a function
    } else if (t.kind === 'ident' && KEYWORDS.has(t.text.toLowerCase())) {
      i++;
    } else if (t.kind === 'ident') {
      if (isPunct(next, '{')) {
        const { matchers, next: after } = matcherList(i + 1);
        selectors.push({ at: i, selector: { metric: t.text, matchers } });
        i = after;
      } else {
        selectors.push({ at: i, selector: { metric: t.text, matchers: [] } });
        i++;
      }
    } else if (isPunct(t, '{')) {
      const { matchers, next: after } = matcherList(i);
      const name = matchers.find((m) => m.label === '__name__' && m.op === '=');
      selectors.push({
        at: i,
        selector: { metric: name?.value, matchers: matchers.filter((m) => m !== name) },
      });
      i = after;
    } else i++;
  }
  return {
    selectors: selectors.map((s) => s.selector),
    groupings: groupings.map((g) => ({
      keyword: g.keyword,
      labels: g.labels,
      selectors: selectors
        .filter((s) => g.scope === undefined || (s.at > g.scope[0] && s.at < g.scope[1]))
        .map((s) => s.selector),
    })),
  };
}
