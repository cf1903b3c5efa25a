/**
 * The boot storm's stand-in for Ironic's httpd: serves the IPA kernel and initramfs (random
 * bytes of the given sizes, held in memory) on 127.0.0.1 with Apache's validators (ETag,
 * Last-Modified), 304 for a matching If-None-Match / If-Modified-Since, HEAD and single byte
 * ranges; 404 for anything else. It counts what metalboot fetched: requests per path and
 * status, body bytes per path, and every byte written to the wire (socket.bytesWritten summed
 * over connections, headers included).
 * `GET /__stats` answers those counters as JSON (only metalboot's image proxy talks to this
 * server, and it never proxies that path).
 *
 *   node --import tsx bench/boot-storm-upstream.ts --kernel-bytes N --initramfs-bytes N
 *
 * Prints one JSON line `{"port":…,"files":{path:{size,sha256}}}` when it listens.
 */
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { defineOptions, runIfEntry, type Args } from './lib/harness.js';
import { STORM_ARTIFACTS } from './lib/storm-net.js';

export const options = defineOptions({
  'kernel-bytes': { type: 'number', help: 'size of the kernel (required)' },
  'initramfs-bytes': { type: 'number', help: 'size of the initramfs (required)' },
  port: { type: 'number', help: 'TCP port on 127.0.0.1 (0: any free one)', default: '0' },
});

export interface PathStats {
  gets: number;
  heads: number;
  /** GETs carrying If-None-Match or If-Modified-Since (revalidations). */
  conditional: number;
  status: Record<string, number>;
  /** Body bytes of 200/206 responses sent to the end. */
  bodyBytes: number;
  /** 200/206 bodies sent to the end. */
  completeBodies: number;
  /** Responses whose connection closed before they were sent. */
  aborted: number;
}

export interface UpstreamStats {
  readonly paths: Record<string, PathStats>;
  /** Every byte written to every connection (socket.bytesWritten), headers and all paths included. */
  readonly wireBytes: number;
  readonly connections: number;
  readonly cpuUserS: number;
  readonly cpuSysS: number;
}

interface StoredFile {
  readonly body: Buffer;
  readonly etag: string;
  readonly lastModified: string;
  readonly mtimeMs: number;
}

function makeFile(size: number): StoredFile {
  const body = Buffer.allocUnsafe(size);
  for (let off = 0; off < size; off += 1 << 24) randomBytes(Math.min(1 << 24, size - off)).copy(body, off);
  const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
  return {
    body,
    etag: `"${size.toString(16)}-${(mtime.getTime() * 1000).toString(16)}"`,
    lastModified: mtime.toUTCString(),
    mtimeMs: mtime.getTime(),
  };
}

function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  return end < start ? undefined : { start, end };
}

export function main(args: Args<typeof options>): void {
  if (args['kernel-bytes'] === undefined || args['initramfs-bytes'] === undefined)
    throw new Error('--kernel-bytes and --initramfs-bytes are required');
  const files = new Map<string, StoredFile>([
    [STORM_ARTIFACTS.kernel, makeFile(args['kernel-bytes'])],
    [STORM_ARTIFACTS.initramfs, makeFile(args['initramfs-bytes'])],
  ]);
  const stats: Record<string, PathStats> = {};
  let connections = 0;
  const statsOf = (p: string): PathStats =>
    (stats[p] ??= { gets: 0, heads: 0, conditional: 0, status: {}, bodyBytes: 0, completeBodies: 0, aborted: 0 });
  const sockets = new Set<Socket>();
  let closedBytes = 0;
  const wireBytes = (): number => [...sockets].reduce((sum, s) => sum + s.bytesWritten, closedBytes);

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/__stats') {
      const cpu = process.cpuUsage();
      const body: UpstreamStats = {
        paths: stats,
        wireBytes: wireBytes(),
        connections,
        cpuUserS: cpu.user / 1e6,
        cpuSysS: cpu.system / 1e6,
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    const st = statsOf(path);
    res.on('close', () => {
      if (!res.writableFinished) st.aborted++;
    });
    if (req.method === 'GET') st.gets++;
    else if (req.method === 'HEAD') st.heads++;
    const send = (status: number, headers: http.OutgoingHttpHeaders, body?: Buffer | string): void => {
      st.status[status] = (st.status[status] ?? 0) + 1;
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { allow: 'GET, HEAD' });
    const f = files.get(path);
    if (f === undefined) return send(404, { 'content-type': 'text/plain' }, 'not found\n');
    const base: http.OutgoingHttpHeaders = {
      etag: f.etag,
      'last-modified': f.lastModified,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    };
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if (req.method === 'GET' && (inm !== undefined || ims !== undefined)) st.conditional++;
    if (
      inm !== undefined
        ? inm.split(',').some((t) => t.trim().replace(/^W\//, '') === f.etag || t.trim() === '*')
        : ims !== undefined && f.mtimeMs <= Date.parse(ims)
    ) {
      return send(304, base);
    }
    const range =
      req.method === 'GET' && req.headers.range !== undefined
        ? parseRange(req.headers.range, f.body.length)
        : undefined;
    if (range === 'unsatisfiable') return send(416, { ...base, 'content-range': `bytes */${f.body.length}` });
    const body = range === undefined ? f.body : f.body.subarray(range.start, range.end + 1);
    const headers: http.OutgoingHttpHeaders = { ...base, 'content-length': body.length };
    if (range !== undefined) headers['content-range'] = `bytes ${range.start}-${range.end}/${f.body.length}`;
    res.on('finish', () => {
      if (req.method !== 'GET') return;
      st.completeBodies++;
      st.bodyBytes += body.length;
    });
    send(range === undefined ? 200 : 206, headers, body);
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => {
      closedBytes += s.bytesWritten;
      sockets.delete(s);
    });
  });
  server.listen(args.port, '127.0.0.1', () => {
    const port = (server.address() as AddressInfo).port;
    const sums = Object.fromEntries(
      [...files].map(([p, f]) => [
        p,
        { size: f.body.length, sha256: createHash('sha256').update(f.body).digest('hex') },
      ]),
    );
    process.stdout.write(`${JSON.stringify({ port, files: sums })}\n`);
  });
  const stop = (): void => {
    for (const s of sockets) s.destroy();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

runIfEntry(import.meta.url, {
  name: 'boot-storm upstream',
  usage: 'node --import tsx bench/boot-storm-upstream.ts --kernel-bytes N --initramfs-bytes N [--port N]',
  about:
    'The boot storm\'s stand-in for Ironic\'s httpd: prints {"port":…,"files":…} when it listens; GET /__stats answers its counters.',
  options,
  main,
  afterMain: 'stay',
});
