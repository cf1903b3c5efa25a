/**
 * A TCP load balancer on 127.0.0.1:0, as a Service in front of replicas is to its clients: each
 * accepted connection is piped, bytes untouched (TLS passes through end to end), to the backend
 * port `target` names at that moment. With no target, connections are closed at once.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface TcpBalancer {
  readonly port: number;
  /** Where the next connection goes (a port on 127.0.0.1). */
  target: number | undefined;
  /** The backend port of every connection accepted so far, in order. */
  readonly routed: readonly number[];
  close(): Promise<void>;
}

export async function startTcpBalancer(): Promise<TcpBalancer> {
  const sockets = new Set<net.Socket>();
  const routed: number[] = [];
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = net.createServer((client) => {
    track(client);
    const port = balancer.target;
    if (port === undefined) {
      client.destroy();
      return;
    }
    routed.push(port);
    const backend = net.connect(port, '127.0.0.1');
    track(backend);
    client.on('error', () => backend.destroy());
    backend.on('error', () => client.destroy());
    client.pipe(backend);
    backend.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const balancer: TcpBalancer = {
    port: (server.address() as net.AddressInfo).port,
    target: undefined,
    routed,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return balancer;
}
