import { readFileSync } from 'node:fs';

/** Whether process `pid` runs: it exists and is not a zombie (state Z in /proc/<pid>/stat). */
export function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
