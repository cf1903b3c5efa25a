/**
 * Ironic's httpd as the lab stands it in: Python's http.server serving `dir` on host:port inside
 * a lab namespace. A fixed port is safe there: the namespace is the lab's own, so nothing else
 * can hold it. Resolves once the server says it is serving; lab.close() stops it.
 */
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './netns.js';

export async function startStaticHttpd(
  lab: Lab,
  ns: string,
  o: { readonly dir: string; readonly host: string; readonly port: number },
): Promise<ChildProcess> {
  const httpd = lab.spawn(ns, 'python3', ['-m', 'http.server', String(o.port), '--bind', o.host, '--directory', o.dir]);
  await lab.waitForOutput(httpd, /Serving HTTP/, 15_000);
  return httpd;
}
