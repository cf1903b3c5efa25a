/** The HTTP service: a built fastify app listening on --http-listen. */
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../net/listen-address.js';
import type { Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';

export class HttpServer implements Service {
  readonly name: string;
  readonly #build: () => Promise<FastifyInstance>;
  readonly #listen: ListenAddress;
  #app: FastifyInstance | undefined;

  constructor(name: string, listen: ListenAddress, build: () => Promise<FastifyInstance>) {
    this.name = name;
    this.#listen = listen;
    this.#build = build;
  }

  get app(): FastifyInstance | undefined {
    return this.#app;
  }

  address(): ListenAddress {
    const a = this.#app?.server.address();
    if (a === null || a === undefined || typeof a === 'string')
      throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', 'not listening');
    return { host: a.address, port: a.port };
  }

  async start(): Promise<void> {
    this.#app = await this.#build();
    await this.#app.listen({ host: this.#listen.host, port: this.#listen.port });
  }

  async close(): Promise<void> {
    await this.#app?.close();
  }
}
