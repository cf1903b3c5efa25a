/**
 * The Kubernetes API server fixture (kube-apiserver.ts) as a process of its own, for a test
 * that needs it inside a network namespace, where the test process's 127.0.0.1 is out of reach:
 *
 *   ip netns exec <ns> node --import tsx test/support/kube-apiserver-main.ts <hosts.json> <dir> [host]
 *
 * serves the BareMetalHosts of hosts.json (a HostInput[]) over plain HTTP on `host` (default
 * 127.0.0.1) of that namespace — the namespace's own address when replicas in other namespaces
 * of the test must reach it — writes <dir>/kubeconfig for it, prints one line `{"kubeconfig": …, "url": …}` and
 * runs until it is killed.
 */
import { readFileSync } from 'node:fs';
import { type HostInput, startKubeApiServer } from './kube-apiserver.js';
import { writeKubeconfig } from './kube-config.js';

const [hostsFile, dir, host] = process.argv.slice(2);
if (hostsFile === undefined || dir === undefined) {
  process.stderr.write('usage: kube-apiserver-main.ts <hosts.json> <dir> [host]\n');
  process.exit(2);
}
const hosts = JSON.parse(readFileSync(hostsFile, 'utf8')) as HostInput[];
const server = await startKubeApiServer({ hosts, ...(host === undefined ? {} : { host }) });
const kubeconfig = await writeKubeconfig(server, { dir });
process.stdout.write(`${JSON.stringify({ kubeconfig, url: server.url })}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
