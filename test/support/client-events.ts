/**
 * What a DHCP client's hook script recorded: the e2e tests give dhclient and udhcpc a script that
 * appends `<event> NAME=value` lines and `<event> END` after each invocation, instead of
 * configuring the host. Read back as one object per invocation.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface ClientEvent {
  readonly event: string;
  readonly vars: Record<string, string>;
}

export function clientEvents(file: string): ClientEvent[] {
  if (!existsSync(file)) return [];
  const out: ClientEvent[] = [];
  let cur: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line);
    if (!m) continue;
    if (m[2] === 'END') {
      out.push({ event: m[1]!, vars: cur });
      cur = {};
    } else {
      const eq = m[2]!.indexOf('=');
      cur[m[2]!.slice(0, eq)] = m[2]!.slice(eq + 1);
    }
  }
  return out;
}
