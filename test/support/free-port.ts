/** A TCP port free on 127.0.0.1 right now (for a server that must be told its port up front). */
import { once } from 'node:events';
import net from 'node:net';

export async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
