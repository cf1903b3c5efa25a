/**
 * What iPXE does over HTTP in a boot storm, for one simulated host: GET /boot.ipxe, follow its
 * chain to /boot/<mac-hyphen>.ipxe, then GET the kernel and the initramfs named by that script,
 * one after another on one keep-alive connection from the host's own address. Bodies are
 * streamed and counted (and hashed when asked), never kept.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';

export class StormHttpError extends Error {
  constructor(
    readonly code: 'STORM_HTTP_STATUS' | 'STORM_HTTP_SHORT' | 'STORM_HTTP_TIMEOUT' | 'STORM_HTTP_SOCKET' | 'STORM_HTTP_SCRIPT',
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
}

export interface HostHttp {
  get(url: string, o: { keepText?: boolean; hash?: boolean; idleTimeoutMs: number }): Promise<Fetched>;
  close(): void;
}

/** One keep-alive connection per host (iPXE fetches one thing at a time), from `localAddress`. */
export function hostHttp(localAddress: string): HostHttp {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
  return {
    get(url, o) {
      return new Promise<Fetched>((resolve, reject) => {
        const req = http.get(url, { agent, headers: { 'user-agent': 'iPXE/1.21.1+ (g00000)' } }, (res) => {
          const status = res.statusCode ?? 0;
          const hash = o.hash === true ? createHash('sha256') : undefined;
          const keep: Buffer[] = [];
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            hash?.update(c);
            if (o.keepText === true && bytes <= 1 << 20) keep.push(c);
          });
          res.on('end', () => {
            const expected = Number(res.headers['content-length'] ?? NaN);
            if (status !== 200) return reject(new StormHttpError('STORM_HTTP_STATUS', `GET ${url}: ${status}`));
            if (Number.isFinite(expected) && bytes !== expected) return reject(new StormHttpError('STORM_HTTP_SHORT', `GET ${url}: ${bytes} of ${expected} bytes`));
            resolve({ status, bytes, ...(hash === undefined ? {} : { sha256: hash.digest('hex') }), ...(o.keepText === true ? { text: Buffer.concat(keep).toString('utf8') } : {}) });
          });
          res.on('aborted', () => reject(new StormHttpError('STORM_HTTP_SHORT', `GET ${url}: aborted after ${bytes} bytes`)));
          res.on('error', (err) => reject(new StormHttpError('STORM_HTTP_SOCKET', `GET ${url}: ${err.message}`)));
        });
        req.setTimeout(o.idleTimeoutMs, () => {
          req.destroy(new StormHttpError('STORM_HTTP_TIMEOUT', `GET ${url}: idle ${o.idleTimeoutMs} ms`));
        });
        req.on('error', (err) => reject(err instanceof StormHttpError ? err : new StormHttpError('STORM_HTTP_SOCKET', `GET ${url}: ${err.message}`)));
      });
    },
    close() {
      agent.destroy();
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
  if (kernel === undefined || initrd === undefined) throw new StormHttpError('STORM_HTTP_SCRIPT', `host script has no kernel/initrd URL:\n${script.slice(0, 400)}`);
  return { kernel, initrd };
}
