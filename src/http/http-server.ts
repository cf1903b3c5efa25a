/**
 * The HTTP service: a fastify app listening on --http-listen.
 *
 * It binds first and builds the app second, handing the build the address it got: with port 0
 * the kernel picks a free port, and the URLs the app advertises (scripts, the API proxy's links)
 * name that port. Choosing a free port up front and binding it later is a race another process
 * can win. Requests that arrive while the app is being built wait for it. Once serving, it logs
 * the address it got through the app's logger ('http listener started'), as fastify's own
 * listen() would have.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../net/listen-address.js';
import type { Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';

/** Fastify's `serverFactory`: the app is served by the server already listening. */
export type ServerFactory = (handler: http.RequestListener) => http.Server;

/** Builds the app for the bound address; it must pass `serverFactory` to fastify. */
export type AppBuilder = (bound: ListenAddress, serverFactory: ServerFactory) => Promise<FastifyInstance>;

export class HttpServer implements Service {
  readonly name: string;
  readonly #build: AppBuilder;
  readonly #listen: ListenAddress;
  #app: FastifyInstance | undefined;
  #server: http.Server | undefined;

  constructor(name: string, listen: ListenAddress, build: AppBuilder) {
    this.name = name;
    this.#listen = listen;
    this.#build = build;
  }

  get app(): FastifyInstance | undefined {
    return this.#app;
  }

  address(): ListenAddress {
    const a = this.#app === undefined ? null : this.#server?.address();
    if (a === null || a === undefined || typeof a === 'string')
      throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', 'not listening');
    return { host: a.address, port: a.port };
  }

  async start(): Promise<void> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#listen.host, port: this.#listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    const waiting: [http.IncomingMessage, http.ServerResponse][] = [];
    let handler: http.RequestListener | undefined;
    let given: http.RequestListener | undefined;
    server.on('request', (req, res) => (handler === undefined ? waiting.push([req, res]) : handler(req, res)));
    try {
      const app = await this.#build({ host: a.address, port: a.port }, (h) => {
        given = h;
        return server;
      });
      await app.ready();
      if (given === undefined || app.server !== server)
        throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', `${this.name}: the app was not built on its server`);
      this.#app = app;
      this.#server = server;
    } catch (err) {
      server.closeAllConnections();
      server.close();
      throw err;
    }
    handler = given;
    for (const [req, res] of waiting.splice(0)) handler(req, res);
    this.#app.log.info({ listener: this.name, listen: this.address() }, 'http listener started');
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    // Stop accepting (idle keep-alive connections are closed too); requests in flight finish.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#app?.close();
    await closed;
  }
}
