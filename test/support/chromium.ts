/**
 * A headless Chromium driven over the DevTools protocol, for tests of the /ui page: no npm
 * package beyond undici's WebSocket. Debian's `chromium` (/usr/bin/chromium) runs with
 * `--no-sandbox` (tests run as root), a profile in a temporary directory that close() deletes,
 * its DevTools endpoint on a loopback port the kernel picks (read back from its stderr), and
 * every background service that would reach the Internet switched off. It runs in a process
 * group of its own, killed whole by close(), also when a test fails.
 *
 * The page's console errors, uncaught exceptions and failed loads are collected in `errors`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'undici';

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export interface Page {
  /** Console errors, exceptions and failed loads of the page, as text. */
  readonly errors: string[];
  navigate(url: string): Promise<void>;
  /** Evaluates `expression` in the page (promises awaited) and returns its value. */
  evaluate<T>(expression: string): Promise<T>;
  /** Polls `expression` until it is truthy; returns its value. */
  waitFor<T>(expression: string, ms: number, what: string): Promise<T>;
  screenshot(): Promise<Buffer>;
}

export interface Browser {
  open(viewport: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

export async function startChromium(): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'metalboot-chromium-'));
  const child: ChildProcess = spawn(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      `--user-data-dir=${profile}`,
      '--remote-debugging-address=127.0.0.1',
      '--remote-debugging-port=0',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-domain-reliability',
      '--disable-sync',
      '--disable-extensions',
      '--disable-default-apps',
      '--hide-scrollbars',
      '--font-render-hinting=none',
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const kill = async () => {
    if (!exited && child.pid !== undefined) {
      const gone = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    }
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium: no DevTools endpoint within 20 s\n${err}`)), 20_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code})\n${err}`));
      });
    });
    child.stderr!.resume();
    const ws = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('cannot connect to DevTools')), { once: true });
    });
    let nextId = 1;
    const pending = new Map<number, Pending>();
    const listeners = new Map<string, ((params: Record<string, unknown>) => void)[]>();
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: Record<string, unknown>;
        sessionId?: string;
      };
      if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error.message));
        else p?.resolve(m.result);
        return;
      }
      for (const f of listeners.get(`${m.sessionId ?? ''}:${m.method}`) ?? []) f(m.params ?? {});
    });
    const send = <T>(method: string, params: object = {}, sessionId?: string): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        ws.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
      });
    const on = (sessionId: string, method: string, f: (params: Record<string, unknown>) => void) => {
      const key = `${sessionId}:${method}`;
      listeners.set(key, [...(listeners.get(key) ?? []), f]);
    };

    return {
      async open(viewport) {
        const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
        const { sessionId: s } = await send<{ sessionId: string }>('Target.attachToTarget', {
          targetId,
          flatten: true,
        });
        const errors: string[] = [];
        on(s, 'Runtime.consoleAPICalled', (p) => {
          if (p.type === 'error' || p.type === 'assert')
            errors.push(`console.${p.type}: ${JSON.stringify((p.args as { value?: unknown }[]).map((a) => a.value))}`);
        });
        on(s, 'Runtime.exceptionThrown', (p) => errors.push(`exception: ${JSON.stringify(p.exceptionDetails)}`));
        on(s, 'Log.entryAdded', (p) => {
          const e = p.entry as { level: string; text: string; url?: string };
          if (e.level === 'error') errors.push(`log: ${e.text} ${e.url ?? ''}`);
        });
        await send('Runtime.enable', {}, s);
        await send('Log.enable', {}, s);
        await send('Page.enable', {}, s);
        await send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1, mobile: false }, s);
        const evaluate = async <T>(expression: string): Promise<T> => {
          const r = await send<{ result: { value: T }; exceptionDetails?: unknown }>(
            'Runtime.evaluate',
            { expression, returnByValue: true, awaitPromise: true },
            s,
          );
          if (r.exceptionDetails !== undefined) throw new Error(`evaluate: ${JSON.stringify(r.exceptionDetails)}`);
          return r.result.value;
        };
        return {
          errors,
          async navigate(url) {
            const loaded = new Promise<void>((resolve) => on(s, 'Page.loadEventFired', () => resolve()));
            await send('Page.navigate', { url }, s);
            await loaded;
          },
          evaluate,
          async waitFor<T>(expression: string, ms: number, what: string): Promise<T> {
            const deadline = Date.now() + ms;
            for (;;) {
              const v = await evaluate<T>(expression);
              if (v) return v;
              if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
              await new Promise((r) => setTimeout(r, 50));
            }
          },
          async screenshot() {
            const r = await send<{ data: string }>('Page.captureScreenshot', { format: 'png' }, s);
            return Buffer.from(r.data, 'base64');
          },
        };
      },
      async close() {
        try {
          if (ws.readyState === WebSocket.OPEN) {
            const closed = send('Browser.close').catch(() => undefined);
            await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
            ws.close();
          }
        } finally {
          await kill();
        }
      },
    };
  } catch (err) {
    await kill();
    throw err;
  }
}
