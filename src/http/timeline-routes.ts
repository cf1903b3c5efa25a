/**
 * The boot timelines over HTTP, read-only:
 * - `GET /debug/boots`: every host, most recently active first, filtered by `state`, `milestone`
 *   (the last one), `stuckFor` (seconds idle, hosts sent to their local disk excepted) and
 *   `limit`;
 * - `GET /debug/boots/<mac>`: one host (404 when none was seen);
 * - `GET /debug/boots/events`: the same, live, as server-sent events (boot-stream.ts);
 * - `GET /ui/`: the live page, plain files from `ui/` at the package root (no build step, nothing
 *   fetched from elsewhere: its Content-Security-Policy allows this origin only).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  BOOT_MILESTONES,
  BOOT_STATES,
  type BootFilter,
  type BootTimeline,
  isBootMilestone,
  isBootState,
  MAX_HOSTS,
  MAX_MILESTONES_PER_HOST,
} from '../boot/boot-timeline.js';
import { parseMac } from '../net/mac.js';
import type { BootStream } from './boot-stream.js';
import { MAX_STREAM_CLIENTS } from './boot-stream.js';

export interface TimelineRoutesOptions {
  readonly timeline: BootTimeline;
  readonly stream: BootStream;
  /** Where the page's files are. Default `ui/` at the package root. */
  readonly uiDir?: string;
}

/** The query of /debug/boots, checked. Pure. */
export function parseBootFilter(
  q: Readonly<Record<string, string | undefined>>,
): { kind: 'filter'; filter: BootFilter } | { kind: 'invalid'; error: string } {
  const filter: { -readonly [K in keyof BootFilter]: BootFilter[K] } = {};
  if (q.state !== undefined) {
    if (!isBootState(q.state)) return { kind: 'invalid', error: `state is one of ${BOOT_STATES.join(', ')}` };
    filter.state = q.state;
  }
  if (q.milestone !== undefined) {
    if (!isBootMilestone(q.milestone))
      return { kind: 'invalid', error: `milestone is one of ${BOOT_MILESTONES.join(', ')}` };
    filter.milestone = q.milestone;
  }
  for (const [key, scale] of [
    ['stuckFor', 1000],
    ['limit', 1],
  ] as const) {
    const v = q[key];
    if (v === undefined) continue;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0)
      return { kind: 'invalid', error: `${key} is a non-negative number` };
    if (key === 'stuckFor') filter.stuckForMs = n * scale;
    else filter.limit = Math.floor(n);
  }
  return { kind: 'filter', filter };
}

/** ui/ at the package root: two levels up from src/http, three from dist/src/http. */
function defaultUiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return (
    ['../../ui', '../../../ui']
      .map((rel) => path.resolve(here, rel))
      .find((dir) => existsSync(path.join(dir, 'index.html'))) ?? path.resolve(here, '../../ui')
  );
}

const UI_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

const UI_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
};

export async function timelineRoutes(app: FastifyInstance, o: TimelineRoutesOptions): Promise<void> {
  const limits = { maxHosts: MAX_HOSTS, maxMilestonesPerHost: MAX_MILESTONES_PER_HOST };

  app.get<{ Querystring: Record<string, string | undefined> }>('/debug/boots', async (req, reply) => {
    const f = parseBootFilter(req.query);
    if (f.kind === 'invalid') return reply.code(400).send({ error: f.error });
    const hosts = o.timeline.hosts(f.filter);
    return { now: new Date().toISOString(), total: o.timeline.size, limits, hosts };
  });

  app.get('/debug/boots/events', (req, reply) => {
    if (!o.stream.canAccept())
      return reply
        .code(503)
        .header('retry-after', '10')
        .send({ error: `at most ${MAX_STREAM_CLIENTS} live views at once` });
    reply.hijack();
    o.stream.add(reply.raw);
    req.log.debug({ peer: req.ip, clients: o.stream.clients }, 'boot stream opened');
    return reply;
  });

  app.get<{ Params: { mac: string } }>('/debug/boots/:mac', async (req, reply) => {
    const mac = parseMac(req.params.mac);
    if (mac === undefined) return reply.code(400).send({ error: 'give /debug/boots/aa:bb:cc:dd:ee:ff' });
    const host = o.timeline.host(mac);
    if (host === undefined) return reply.code(404).send({ error: `no milestone seen for ${mac}` });
    return host;
  });

  // Streams are ended before the server waits for its connections to close.
  app.addHook('preClose', async () => o.stream.close());

  const dir = o.uiDir ?? defaultUiDir();
  const files = new Map(
    Object.entries(UI_FILES).map(([name, type]) => [name, { type, body: readFileSync(path.join(dir, name)) }]),
  );
  // Relative from /ui (no slash) would miss the folder: send the browser to /ui/ with a relative Location.
  app.get('/ui', async (_req, reply) => reply.code(308).header('location', 'ui/').send());
  const serve = (name: string, reply: FastifyReply) => {
    const f = files.get(name);
    if (f === undefined) return reply.code(404).type('text/plain').send('no such file\n');
    return reply.headers(UI_HEADERS).type(f.type).send(f.body);
  };
  app.get('/ui/', async (_req, reply) => serve('index.html', reply));
  app.get<{ Params: { file: string } }>('/ui/:file', async (req, reply) => serve(req.params.file, reply));
}
