/**
 * A stand-in for Ironic's httpd (Apache serving /shared/html) on 127.0.0.1:0, for the image
 * proxy tests: files from memory with Apache's validators (ETag `"<size hex>-<mtime µs hex>"`,
 * Last-Modified), HEAD, single byte ranges, If-None-Match / If-Modified-Since / If-Match /
 * If-Unmodified-Since / If-Range, 404 for anything else. It counts requests per path and can
 * misbehave on demand: delay its headers, stall or die after N body bytes, send slowly.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface UpstreamFileOptions {
  /** Default: now, whole seconds (HTTP dates have no finer resolution). */
  readonly mtime?: Date;
  readonly contentType?: string;
}

/** Misbehaviour for requests to one path. */
export interface Behaviour {
  /** Wait this long before sending the status line. */
  readonly delayHeadersMs?: number;
  /** Send this many body bytes, then nothing more (the connection stays open). */
  readonly stallAfterBytes?: number;
  /** Send this many body bytes, then destroy the connection. */
  readonly dieAfterBytes?: number;
  /** Bytes per write and the pause between writes: a slow upstream. */
  readonly chunkBytes?: number;
  readonly chunkDelayMs?: number;
  /** Applies to the next `times` GET/HEAD requests of the path, then lapses. Default: forever. */
  readonly times?: number;
  /** Answer with this status (and a short text body) instead of the file. */
  readonly status?: number;
  /** Extra response headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RequestRecord {
  readonly method: string;
  /** Raw request target as received. */
  readonly url: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  status?: number;
  /** The connection closed before the response was complete. */
  aborted?: boolean;
}

export interface UpstreamHttpd {
  readonly url: string;
  readonly port: number;
  /** Every request received, in order. */
  readonly requests: readonly RequestRecord[];
  setFile(path: string, body: Buffer, options?: UpstreamFileOptions): void;
  deleteFile(path: string): void;
  behave(path: string, behaviour: Behaviour | undefined): void;
  /** Requests for a path (without query), optionally of one method. */
  count(path: string, method?: string): number;
  /** GETs of a path that carried no validator (full downloads, not revalidations). */
  fullGets(path: string): number;
  etag(path: string): string | undefined;
  /** Forgets the requests seen so far. */
  clearRequests(): void;
  close(): Promise<void>;
}

interface StoredFile {
  readonly body: Buffer;
  readonly mtime: Date;
  readonly etag: string;
  readonly contentType: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves on 'drain' or 'close', whichever comes first, leaving no listener behind. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const apacheEtag = (size: number, mtime: Date): string =>
  `"${size.toString(16)}-${(mtime.getTime() * 1000).toString(16)}"`;

function etagMatches(header: string, etag: string, weak: boolean): boolean {
  return header.split(',').some((t) => {
    const tag = t.trim();
    if (tag === '*') return true;
    return weak ? tag.replace(/^W\//, '') === etag : tag === etag;
  });
}

function parseSingleRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    return n === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}

export async function startUpstreamHttpd(): Promise<UpstreamHttpd> {
  const files = new Map<string, StoredFile>();
  const behaviours = new Map<string, { b: Behaviour; left: number }>();
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();

  const takeBehaviour = (path: string): Behaviour | undefined => {
    const slot = behaviours.get(path);
    if (slot === undefined) return undefined;
    if (--slot.left <= 0) behaviours.delete(path);
    return slot.b;
  };

  async function writeBody(res: http.ServerResponse, body: Buffer, b: Behaviour | undefined): Promise<void> {
    const limit = b?.dieAfterBytes ?? b?.stallAfterBytes ?? body.length;
    const chunk = b?.chunkBytes ?? 64 * 1024;
    let off = 0;
    while (off < Math.min(limit, body.length)) {
      if (res.destroyed) return;
      const n = Math.min(chunk, Math.min(limit, body.length) - off);
      const ok = res.write(body.subarray(off, off + n));
      off += n;
      if (!ok) await drained(res);
      if (b?.chunkDelayMs !== undefined) await sleep(b.chunkDelayMs);
    }
    if (off >= body.length) {
      res.end();
      return;
    }
    if (b?.dieAfterBytes !== undefined) {
      // Let the bytes already written leave before the reset.
      if (res.writableLength > 0) await drained(res);
      await sleep(20);
      res.socket?.destroy();
    }
    // stall: leave the response open; close() destroys the socket.
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const record: RequestRecord = { method: req.method ?? '', url, path, headers: req.headers };
    requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });
    const send = (status: number, headers: http.OutgoingHttpHeaders, body?: Buffer | string): void => {
      record.status = status;
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }, 'method not allowed\n');
      return;
    }
    const b = takeBehaviour(path);
    if (b?.delayHeadersMs !== undefined) await sleep(b.delayHeadersMs);
    if (res.destroyed) return;
    if (b?.status !== undefined) {
      send(b.status, { 'content-type': 'text/plain', ...b.headers }, `status ${b.status}\n`);
      return;
    }
    const f = files.get(path);
    if (f === undefined) {
      send(404, { 'content-type': 'text/html; charset=iso-8859-1' }, '<html><body><h1>Not Found</h1></body></html>\n');
      return;
    }
    const lastModified = f.mtime.toUTCString();
    const base: http.OutgoingHttpHeaders = {
      etag: f.etag,
      'last-modified': lastModified,
      'accept-ranges': 'bytes',
      'content-type': f.contentType,
      ...b?.headers,
    };
    const h = req.headers;
    const mtime = f.mtime.getTime();
    if (h['if-match'] !== undefined && !etagMatches(h['if-match'], f.etag, false)) return send(412, base);
    if (
      h['if-match'] === undefined &&
      h['if-unmodified-since'] !== undefined &&
      mtime > Date.parse(h['if-unmodified-since'])
    )
      return send(412, base);
    if (h['if-none-match'] !== undefined) {
      if (etagMatches(h['if-none-match'], f.etag, true)) return send(304, base);
    } else if (h['if-modified-since'] !== undefined && mtime <= Date.parse(h['if-modified-since'])) {
      return send(304, base);
    }
    let range = req.method === 'GET' && h.range !== undefined ? parseSingleRange(h.range, f.body.length) : undefined;
    if (range !== undefined && h['if-range'] !== undefined) {
      const ir = String(h['if-range']);
      const holds = ir.startsWith('"') ? ir === f.etag : Date.parse(ir) === mtime;
      if (!holds) range = undefined;
    }
    if (range === 'unsatisfiable') return send(416, { ...base, 'content-range': `bytes */${f.body.length}` });
    const status = range === undefined ? 200 : 206;
    const body = range === undefined ? f.body : f.body.subarray(range.start, range.end + 1);
    const headers: http.OutgoingHttpHeaders = { ...base, 'content-length': body.length };
    if (range !== undefined) headers['content-range'] = `bytes ${range.start}-${range.end}/${f.body.length}`;
    record.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await writeBody(res, body, b);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.destroy(err as Error);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setFile(path, body, options = {}) {
      const mtime = options.mtime ?? new Date(Math.floor(Date.now() / 1000) * 1000);
      files.set(path, {
        body,
        mtime,
        etag: apacheEtag(body.length, mtime),
        contentType: options.contentType ?? 'application/octet-stream',
      });
    },
    deleteFile(path) {
      files.delete(path);
    },
    behave(path, behaviour) {
      if (behaviour === undefined) behaviours.delete(path);
      else behaviours.set(path, { b: behaviour, left: behaviour.times ?? Number.POSITIVE_INFINITY });
    },
    count: (path, method) =>
      requests.filter((r) => r.path === path && (method === undefined || r.method === method)).length,
    fullGets: (path) =>
      requests.filter(
        (r) =>
          r.path === path &&
          r.method === 'GET' &&
          r.headers['if-none-match'] === undefined &&
          r.headers['if-modified-since'] === undefined &&
          r.headers.range === undefined,
      ).length,
    etag: (path) => files.get(path)?.etag,
    clearRequests: () => {
      requests.length = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
