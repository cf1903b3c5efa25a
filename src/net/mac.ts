/**
 * A hardware (Ethernet) address in canonical form: lower-case, colon-separated,
 * "aa:bb:cc:dd:ee:ff". Parsed once at the edge; every index and log uses this form.
 */
export type Mac = string & { readonly __brand: 'Mac' };

const MAC_RE =
  /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, or `aabbccddeeff` (any case). Returns undefined if invalid. */
export function parseMac(text: string): Mac | undefined {
  const m = MAC_RE.exec(text.trim().toLowerCase());
  if (!m) return undefined;
  return `${m[1]}:${m[2]}:${m[3]}:${m[4]}:${m[5]}:${m[6]}` as Mac;
}

/** The canonical MAC of the first six bytes of `buf` at `offset` (the caller checks bounds). */
export function macFromBytes(buf: Uint8Array, offset = 0): Mac {
  return `${HEX[buf[offset]!]}:${HEX[buf[offset + 1]!]}:${HEX[buf[offset + 2]!]}:${HEX[buf[offset + 3]!]}:${HEX[buf[offset + 4]!]}:${HEX[buf[offset + 5]!]}` as Mac;
}

export function macToBytes(mac: Mac): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}

/** iPXE's `${mac:hexhyp}` form, as used in script and pxelinux.cfg names: aa-bb-cc-dd-ee-ff. */
export function macHexHyp(mac: Mac): string {
  return mac.replaceAll(':', '-');
}
