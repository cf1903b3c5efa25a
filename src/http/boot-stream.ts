/**
 * Live boot timelines over server-sent events (`GET /debug/boots/events`, read by /ui).
 *
 * A client gets, in order: a `snapshot` event (every host, as /debug/boots shows them), then
 * `hosts` events holding only the hosts that changed, at most one per {@link BATCH_MS}, whatever
 * the packet rate: 500 hosts booting at once cost each client two messages a second, not one per
 * packet. `rates` events every {@link RATES_MS} say what DHCP, TFTP, HTTP and the image proxy did
 * per second; a comment line every {@link HEARTBEAT_MS} keeps idle proxies from closing the
 * stream. Every batch is serialised once and written to every client.
 *
 * Bounds: {@link MAX_STREAM_CLIENTS} clients (one more is refused with 503); a client whose
 * socket holds more than {@link MAX_CLIENT_BUFFER_BYTES} unsent is dropped (its EventSource
 * reconnects and starts from a new snapshot). Timers run only while a client is connected;
 * close() ends every stream.
 */
import type { ServerResponse } from 'node:http';
import type { BootTimeline, HostTimelineView } from '../boot/boot-timeline.js';
import type { Mac } from '../net/mac.js';

/** A handful of operators' browsers; each costs a socket and a copy of every batch. */
export const MAX_STREAM_CLIENTS = 16;
/** Updates are coalesced over this long: the page stays live, a storm stays cheap. */
export const BATCH_MS = 500;
export const RATES_MS = 2_000;
/** Under the 30-60 s idle timeouts of common proxies and load balancers. */
export const HEARTBEAT_MS = 15_000;
/** Beyond a few snapshots' worth unsent, the client is not keeping up: drop it. */
export const MAX_CLIENT_BUFFER_BYTES = 8 * 1024 * 1024;

export type ActivityKind = 'dhcp' | 'tftp' | 'http' | 'image';

interface Counts {
  dhcp: number;
  tftp: number;
  tftpBytes: number;
  http: number;
  image: number;
  imageBytes: number;
}

const zero = (): Counts => ({ dhcp: 0, tftp: 0, tftpBytes: 0, http: 0, image: 0, imageBytes: 0 });

export interface BootStreamOptions {
  readonly timeline: BootTimeline;
  readonly now: () => number;
}

export class BootStream {
  readonly #o: BootStreamOptions;
  readonly #clients = new Set<ServerResponse>();
  readonly #dirty = new Set<Mac>();
  #counts = zero();
  #countsSince: number;
  #batch: NodeJS.Timeout | undefined;
  #rates: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(o: BootStreamOptions) {
    this.#o = o;
    this.#countsSince = o.now();
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** A host's timeline changed (BootTimeline's onChange). */
  changed(mac: Mac): void {
    if (this.#clients.size === 0) return;
    this.#dirty.add(mac);
    this.#batch ??= setTimeout(() => this.#flush(), BATCH_MS);
  }

  /** One reply, transfer or request of a wing, with its bytes (BootMilestones' onActivity). */
  activity(kind: ActivityKind, bytes: number): void {
    const c = this.#counts;
    c[kind]++;
    if (kind === 'tftp') c.tftpBytes += bytes;
    if (kind === 'image') c.imageBytes += bytes;
  }

  /** Whether one more client may connect. */
  canAccept(): boolean {
    return this.#clients.size < MAX_STREAM_CLIENTS;
  }

  /** Takes over a response whose head is not yet written: the stream starts with a snapshot. */
  add(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.#clients.add(res);
    res.once('close', () => this.#remove(res));
    this.#write(res, `retry: 3000\n\n${event('snapshot', this.#payload(this.#o.timeline.hosts()))}`);
    this.#heartbeat ??= setInterval(() => this.#broadcast(': heartbeat\n\n'), HEARTBEAT_MS);
    if (this.#rates === undefined) {
      this.#counts = zero();
      this.#countsSince = this.#o.now();
      this.#rates = setInterval(() => this.#sendRates(), RATES_MS);
    }
  }

  /** Ends every stream and stops the timers. */
  close(): void {
    for (const res of [...this.#clients]) {
      res.end();
      this.#remove(res);
    }
  }

  #remove(res: ServerResponse): void {
    if (!this.#clients.delete(res) || this.#clients.size > 0) return;
    clearTimeout(this.#batch);
    clearInterval(this.#rates);
    clearInterval(this.#heartbeat);
    this.#batch = this.#rates = this.#heartbeat = undefined;
    this.#dirty.clear();
  }

  #payload(hosts: readonly HostTimelineView[]): string {
    return JSON.stringify({ now: new Date(this.#o.now()).toISOString(), hosts });
  }

  #flush(): void {
    this.#batch = undefined;
    const hosts: HostTimelineView[] = [];
    for (const mac of this.#dirty) {
      const h = this.#o.timeline.host(mac);
      if (h !== undefined) hosts.push(h);
    }
    this.#dirty.clear();
    if (hosts.length > 0) this.#broadcast(event('hosts', this.#payload(hosts)));
  }

  #sendRates(): void {
    const now = this.#o.now();
    const s = Math.max(0.001, (now - this.#countsSince) / 1000);
    const c = this.#counts;
    const perSecond = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v / s]));
    this.#counts = zero();
    this.#countsSince = now;
    this.#broadcast(
      event(
        'rates',
        JSON.stringify({ now: new Date(now).toISOString(), seconds: s, perSecond, hosts: this.#o.timeline.size }),
      ),
    );
  }

  #broadcast(text: string): void {
    for (const res of [...this.#clients]) this.#write(res, text);
  }

  #write(res: ServerResponse, text: string): void {
    if (res.destroyed || res.writableEnded) return;
    res.write(text);
    if (res.writableLength > MAX_CLIENT_BUFFER_BYTES) {
      res.destroy();
      this.#remove(res);
    }
  }
}

function event(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}
