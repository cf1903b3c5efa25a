/**
 * bench/RESULTS.md is shared: each benchmark owns `## <name>` sections and replaces only those,
 * leaving every other section as it found it.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './machine.js';

export const RESULTS_FILE = path.join(REPO_ROOT, 'bench', 'RESULTS.md');

const PREAMBLE =
  '# Benchmark results\n\nMeasured by the scripts in this directory; see [README.md](README.md) for how to run them.\n';

/**
 * Replaces the section whose heading line is exactly `## <heading>` (up to the next `## ` line)
 * with `body`, or appends it when absent. `body` excludes the heading line.
 */
export function replaceSection(text: string, heading: string, body: string): string {
  const lines = text.split('\n');
  const title = `## ${heading}`;
  const start = lines.findIndex((l) => l.trimEnd() === title);
  const section = `${title}\n\n${body.trim()}\n`;
  if (start < 0) return `${text.trimEnd()}\n\n${section}`;
  let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  if (end < 0) end = lines.length;
  const before = lines.slice(0, start).join('\n').trimEnd();
  const after = lines.slice(end).join('\n').trim();
  return `${before}\n\n${section}${after === '' ? '' : `\n${after}\n`}`;
}

/**
 * The `### <sub>` subsection of the `## <heading>` section (its heading line included, up to the
 * next `### ` or `## ` line), trimmed; undefined when either is absent.
 */
export function subsection(text: string, heading: string, sub: string): string | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === `## ${heading}`);
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const section = lines.slice(start + 1, end < 0 ? lines.length : end);
  const from = section.findIndex((l) => l.trimEnd() === `### ${sub}`);
  if (from < 0) return undefined;
  const to = section.findIndex((l, i) => i > from && l.startsWith('### '));
  return section
    .slice(from, to < 0 ? section.length : to)
    .join('\n')
    .trim();
}

/** Writes `body` under `## <heading>` in bench/RESULTS.md (created if missing), atomically. */
export function writeResultsSection(heading: string, body: string, file = RESULTS_FILE): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : PREAMBLE;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, replaceSection(text, heading, body));
  renameSync(tmp, file);
}
