/**
 * Locations the relays hand to clients. Pure.
 *
 * A rewritten or relayed relative reference must stay on our origin. One that starts with two
 * slashes is a network-path reference (RFC 3986 §4.2): `//evil/x` names the host `evil`. URL
 * parsers as browsers, iPXE's and Python's see them also read `\` as `/` in http(s) URLs and skip
 * tabs and line breaks (WHATWG URL), so `/\evil` and `/<tab>/evil` name a host too.
 */

const LEADING_SLASHES = /^[\t\n\r ]*[/\\][/\\\t\n\r]*/;

/**
 * `ref` with a leading run of slashes and backslashes (and the tabs and line breaks between
 * them) folded to one slash: an absolute path on the origin the client already talks to. Any
 * other value (an absolute URL, a relative path, a query) is returned unchanged.
 */
export function sameOriginReference(ref: string): string {
  const m = LEADING_SLASHES.exec(ref);
  return m === null ? ref : `/${ref.slice(m[0].length)}`;
}
