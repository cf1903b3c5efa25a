import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeSegment,
  matchesPrefix,
  parseTarget,
  prefixProblem,
  upstreamTarget,
  type TargetRefusal,
} from './paths.js';

describe('parseTarget', () => {
  it.each<[string, string, string | undefined]>([
    ['plain file', '/images/ironic-python-agent.kernel', undefined],
    ['query kept raw', '/images/x?a=1&b=%20', 'a=1&b=%20'],
    ['empty query', '/images/x?', ''],
  ])('forwards a %s', (_name, raw, query) => {
    const t = parseTarget(raw);
    expect(t).toEqual({ kind: 'forward', path: raw.split('?')[0], query });
  });

  it.each<[string, string, string]>([
    ['merged slashes', '/images//a///b', '/images/a/b'],
    ['decoded unreserved', '/images/ironic%2Dpython%2dagent.kernel', '/images/ironic-python-agent.kernel'],
    ['encoded space stays encoded', '/images/a%20b', '/images/a%20b'],
    ['raw UTF-8 percent-encoded once', '/images/caf%C3%A9', '/images/caf%C3%A9'],
    ['sub-delims decoded', '/images/a%2Bb%3Dc', '/images/a+b=c'],
    ['trailing slash kept', '/images/dir/', '/images/dir/'],
    ['hyphenated MAC', '/pxelinux.cfg/52-54-00-12-34-56', '/pxelinux.cfg/52-54-00-12-34-56'],
  ])('canonicalises %s', (_name, raw, path) => {
    expect(parseTarget(raw)).toMatchObject({ kind: 'forward', path });
  });

  it.each<[string, string, TargetRefusal]>([
    ['absolute URI', 'http://evil.example/images/x', 'absolute-uri'],
    ['absolute URI with another scheme', 'file:///etc/passwd', 'absolute-uri'],
    ['asterisk form', '*', 'not-origin-form'],
    ['authority form', 'evil.example:443', 'absolute-uri'],
    ['relative', 'images/x', 'not-origin-form'],
    ['fragment', '/images/x#y', 'not-origin-form'],
    ['dot-dot', '/images/../etc/passwd', 'dot-segment'],
    ['dot', '/images/./x', 'dot-segment'],
    ['encoded dot-dot', '/images/%2e%2e/x', 'dot-segment'],
    ['mixed encoded dot-dot', '/images/.%2E/x', 'dot-segment'],
    ['encoded slash', '/images/a%2fb', 'encoded-slash'],
    ['encoded backslash', '/images/a%5Cb', 'encoded-slash'],
    ['backslash', '/images/a\\b', 'backslash'],
    ['encoded NUL', '/images/a%00b', 'nul'],
    ['raw NUL', '/images/a\u0000b', 'nul'],
    ['encoded control character', '/images/a%0ab', 'control-char'],
    ['raw space', '/images/a b', 'control-char'],
    ['double-encoded dot', '/images/%252e%252e/x', 'double-encoding'],
    ['double-encoded slash', '/images/a%252fb', 'double-encoding'],
    ['malformed escape', '/images/%zz', 'bad-encoding'],
    ['truncated escape', '/images/a%2', 'bad-encoding'],
    ['invalid UTF-8', '/images/%c3%28', 'bad-encoding'],
  ])('refuses %s', (_name, raw, reason) => {
    expect(parseTarget(raw)).toEqual({ kind: 'refuse', reason });
  });

  it('never forwards a path with a dot segment, a backslash, or a NUL, whatever the input', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('/', '.', '%', '2', 'e', 'E', 'f', '5', 'c', '0', 'a', '\\', '?') }),
        (s) => {
          const t = parseTarget(`/${s}`);
          if (t.kind === 'refuse') return;
          const segments = t.path.split('/').map((x) => decodeURIComponent(x));
          expect(segments).not.toContain('..');
          expect(segments).not.toContain('.');
          expect(t.path).not.toMatch(/\\|%00|%2F|%5C/i);
          // canonical: parsing the output again gives the same path
          expect(parseTarget(t.path)).toMatchObject({ kind: 'forward', path: t.path });
        },
      ),
    );
  });
});

describe('encodeSegment', () => {
  it('encodes everything outside RFC 3986 pchar, as uppercase hex of UTF-8', () => {
    expect(encodeSegment("a-z_~.!$&'()*+,;=:@")).toBe("a-z_~.!$&'()*+,;=:@");
    expect(encodeSegment('a b/c?d#e%é')).toBe('a%20b%2Fc%3Fd%23e%25%C3%A9');
  });
});

describe('matchesPrefix', () => {
  const prefixes = ['/images/', '/ironic-python-agent'];
  it.each<[string, boolean, boolean]>([
    ['/images/x', false, true],
    ['/images/', false, false],
    ['/images', false, false],
    ['/imagesx/y', false, false],
    ['/ironic-python-agent.kernel', false, true],
    ['/0e0e0e0e-1111-2222-3333-444455556666/deploy_kernel', true, true],
    ['/0e0e0e0e-1111-2222-3333-444455556666/deploy_kernel', false, false],
    ['/0e0e0e0e-1111-2222-3333-444455556666/', true, false],
    ['/0E0E0E0E-1111-2222-3333-444455556666/x', true, false],
    ['/boot.ipxe', true, false],
  ])('%s (node directories %s) → %s', (path, nodeDirs, want) => {
    expect(matchesPrefix(path, prefixes, nodeDirs)).toBe(want);
  });
});

describe('prefixProblem', () => {
  it.each(['/images/', '/pxelinux.cfg/', '/ironic-python-agent'])('accepts %s', (p) =>
    expect(prefixProblem(p)).toBeUndefined(),
  );
  it.each(['images/', '/', '/a/../b/', '/a*', '/a/%2e/', '/a//b/', '/a b/'])('refuses %s', (p) =>
    expect(prefixProblem(p)).toBeDefined(),
  );
});

describe('upstreamTarget', () => {
  it('joins base path, path and query', () => {
    expect(upstreamTarget('', '/images/x', undefined)).toBe('/images/x');
    expect(upstreamTarget('/ironic', '/images/x', 'a=1')).toBe('/ironic/images/x?a=1');
  });
});
