/**
 * What iPXE does over HTTP in a boot storm, for one simulated host: GET /boot.ipxe, follow its
 * chain to /boot/<mac-hyphen>.ipxe, then GET the kernel and the initramfs named by that script,
 * one after another on one keep-alive connection from the host's own address.
 *
 * A minimal HTTP/1.1 client (like iPXE's own): GET, Content-Length framing, keep-alive. Bodies
 * are counted (and hashed when asked), never kept, and read with `onread` into one shared
 * buffer of 1 MiB: no Buffer per read and up to 1 MiB per read() call. 500 hosts pulling 75 MB
 * each are then cheap enough for one client thread that the storm measures metalboot rather
 * than node:http's per-chunk allocations in the load generator.
 */
import net from 'node:net';
import { createHash, type Hash } from 'node:crypto';

export class StormHttpError extends Error {
  constructor(
    readonly code:
      | 'STORM_HTTP_STATUS'
      | 'STORM_HTTP_SHORT'
      | 'STORM_HTTP_TIMEOUT'
      | 'STORM_HTTP_SOCKET'
      | 'STORM_HTTP_SCRIPT'
      | 'STORM_HTTP_PROTOCOL',
    message: string,
  ) {
    super(message);
  }
}

export interface Fetched {
  readonly status: number;
  readonly bytes: number;
  readonly sha256?: string;
  /** Small bodies (scripts) only. */
  readonly text?: string;
  /** Request written → response head complete, and → last byte, ms; TCP connect when a new connection was opened. */
  readonly headMs: number;
  readonly ms: number;
  readonly connectMs?: number;
}

export interface GetOptions {
  readonly keepText?: boolean;
  readonly hash?: boolean;
  readonly idleTimeoutMs: number;
}

export interface HostHttp {
  get(url: string, o: GetOptions): Promise<Fetched>;
  close(): void;
}

/** Every connection of this thread reads into this; a read is consumed before the next one. */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(1 << 20);
const MAX_HEADER_BYTES = 16 * 1024;
const TEXT_LIMIT = 1 << 20;

interface Exchange {
  readonly url: string;
  readonly o: GetOptions;
  readonly resolve: (f: Fetched) => void;
  readonly reject: (e: Error) => void;
  head: Buffer[];
  headBytes: number;
  status: number;
  /** Body bytes still to come; undefined while reading the head. */
  left: number | undefined;
  bytes: number;
  closeAfter: boolean;
  readonly t0: number;
  headAt: number;
  connectMs: number | undefined;
  readonly hash: Hash | undefined;
  readonly text: Buffer[];
}

/** One keep-alive connection per host (iPXE fetches one thing at a time), from `localAddress`. */
export function hostHttp(localAddress: string): HostHttp {
  let socket: net.Socket | undefined;
  let socketKey = '';
  let current: Exchange | undefined;

  const fail = (e: StormHttpError): void => {
    const x = current;
    current = undefined;
    socket?.destroy();
    socket = undefined;
    x?.reject(e);
  };

  const finish = (): void => {
    const x = current!;
    current = undefined;
    if (x.closeAfter) {
      socket?.end();
      socket = undefined;
    }
    if (x.status !== 200) {
      x.reject(new StormHttpError('STORM_HTTP_STATUS', `GET ${x.url}: ${x.status}`));
      return;
    }
    x.resolve({
      status: x.status,
      bytes: x.bytes,
      headMs: x.headAt - x.t0,
      ms: performance.now() - x.t0,
      ...(x.connectMs === undefined ? {} : { connectMs: x.connectMs }),
      ...(x.hash === undefined ? {} : { sha256: x.hash.digest('hex') }),
      ...(x.o.keepText === true ? { text: Buffer.concat(x.text).toString('utf8') } : {}),
    });
  };

  const body = (x: Exchange, chunk: Buffer): void => {
    const take = Math.min(chunk.length, x.left!);
    const part = take === chunk.length ? chunk : chunk.subarray(0, take);
    x.bytes += take;
    x.left! -= take;
    x.hash?.update(part);
    if (x.o.keepText === true && x.bytes <= TEXT_LIMIT) x.text.push(Buffer.from(part));
    if (take < chunk.length)
      return fail(
        new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: ${chunk.length - take} bytes after the body`),
      );
    if (x.left === 0) finish();
  };

  const head = (x: Exchange, chunk: Buffer): void => {
    x.head.push(Buffer.from(chunk)); // the shared buffer is reused by the next read
    x.headBytes += chunk.length;
    const all = Buffer.concat(x.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (x.headBytes > MAX_HEADER_BYTES)
        fail(new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: header over ${MAX_HEADER_BYTES} bytes`));
      else x.head = [all];
      return;
    }
    x.headAt = performance.now();
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (m === null)
      return fail(
        new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: bad status line ${JSON.stringify(lines[0])}`),
      );
    x.status = Number(m[1]);
    let length: number | undefined;
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding')
        return fail(
          new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: Transfer-Encoding ${value} (no Content-Length)`),
        );
      else if (name === 'connection' && value.toLowerCase() === 'close') x.closeAfter = true;
    }
    if (length === undefined || !Number.isSafeInteger(length))
      return fail(new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: no Content-Length`));
    x.left = length;
    x.head = [];
    const rest = all.subarray(end + 4);
    if (length === 0) {
      if (rest.length > 0)
        return fail(new StormHttpError('STORM_HTTP_PROTOCOL', `GET ${x.url}: bytes after an empty body`));
      return finish();
    }
    if (rest.length > 0) body(x, rest);
  };

  const connect = (host: string, port: number): net.Socket => {
    const s = net.connect({
      host,
      port,
      localAddress,
      noDelay: true,
      onread: {
        buffer: SHARED_READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          const x = current;
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (x === undefined) {
            fail(new StormHttpError('STORM_HTTP_PROTOCOL', `${n} bytes with no request outstanding`));
            return false;
          }
          if (x.left === undefined) head(x, chunk);
          else body(x, chunk);
          return true;
        },
      },
    });
    s.on('error', (err) => {
      if (socket === s) fail(new StormHttpError('STORM_HTTP_SOCKET', `${current?.url ?? host}: ${err.message}`));
    });
    s.on('close', () => {
      if (socket !== s) return;
      socket = undefined;
      if (current !== undefined)
        fail(
          new StormHttpError(
            'STORM_HTTP_SHORT',
            `GET ${current.url}: connection closed after ${current.bytes} body bytes`,
          ),
        );
    });
    s.on('timeout', () => {
      if (socket === s && current !== undefined)
        fail(new StormHttpError('STORM_HTTP_TIMEOUT', `GET ${current.url}: idle ${current.o.idleTimeoutMs} ms`));
    });
    return s;
  };

  return {
    get(url, o) {
      return new Promise<Fetched>((resolve, reject) => {
        if (current !== undefined) return reject(new StormHttpError('STORM_HTTP_PROTOCOL', 'one request at a time'));
        const u = new URL(url);
        if (u.protocol !== 'http:') return reject(new StormHttpError('STORM_HTTP_PROTOCOL', `not http: ${url}`));
        const port = Number(u.port || 80);
        const key = `${u.hostname}:${port}`;
        const t0 = performance.now();
        const fresh = socket === undefined || socket.destroyed || socketKey !== key;
        if (fresh) {
          socket?.destroy();
          socket = connect(u.hostname, port);
          socketKey = key;
        }
        const x: Exchange = {
          url,
          o,
          resolve,
          reject,
          head: [],
          headBytes: 0,
          status: 0,
          left: undefined,
          bytes: 0,
          closeAfter: false,
          t0,
          headAt: NaN,
          connectMs: undefined,
          hash: o.hash === true ? createHash('sha256') : undefined,
          text: [],
        };
        current = x;
        if (fresh) socket!.once('connect', () => (x.connectMs = performance.now() - t0));
        socket!.setTimeout(o.idleTimeoutMs);
        socket!.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: iPXE/1.21.1+\r\nConnection: keep-alive\r\n\r\n`,
        );
      });
    },
    close() {
      socket?.destroy();
      socket = undefined;
    },
  };
}

/**
 * The host script URL from metalboot's boot.ipxe: the first `chain` whose URL has the
 * `${net${netid}/mac:hexhyp}` loop variable, with net0's MAC put in (what iPXE does for NIC 0).
 */
export function hostScriptUrl(bootIpxe: string, mac: string): string {
  const hyp = mac.toLowerCase().replace(/:/g, '-');
  for (const line of bootIpxe.split('\n')) {
    const m = /^\s*chain\s+(?:--\S+\s+)*(\S+)/.exec(line);
    if (m === null) continue;
    const url = m[1]!;
    if (!url.includes('mac:hexhyp')) continue;
    return url.replace(/\$\{net\$\{netid\}\/mac:hexhyp\}/, hyp).replace(/\$\{net0\/mac:hexhyp\}/, hyp);
  }
  throw new StormHttpError('STORM_HTTP_SCRIPT', 'boot.ipxe has no chain to a per-MAC script');
}

/** `kernel …` and `initrd …` URLs of an iPXE script (the first http URL on each line). */
export function imageUrls(script: string): { kernel: string; initrd: string } {
  const url = (cmd: string): string | undefined => {
    for (const line of script.split('\n')) {
      const words = line.trim().split(/\s+/);
      if (words[0] !== cmd) continue;
      const u = words.find((w) => /^https?:\/\//.test(w));
      if (u !== undefined) return u;
    }
    return undefined;
  };
  const kernel = url('kernel');
  const initrd = url('initrd');
  if (kernel === undefined || initrd === undefined)
    throw new StormHttpError('STORM_HTTP_SCRIPT', `host script has no kernel/initrd URL:\n${script.slice(0, 400)}`);
  return { kernel, initrd };
}
