// The layering of docs/architecture.md, checked against every import of src/. The table in
// that document is the rule; this test only reads it and the code.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = path.join(ROOT, 'src');

/** Folder (or `main.ts`) → the folders it may import, from the document's table. */
function parseLayers(markdown: string): Map<string, Set<string>> {
  const block = /<!-- layers:begin -->([\s\S]*?)<!-- layers:end -->/.exec(markdown)?.[1];
  if (block === undefined) throw new Error('docs/architecture.md has no layers table');
  const rows = block.split('\n').filter((l) => l.startsWith('| `'));
  const names = rows.map((r) => unit(r.split('|')[1]!));
  const layers = new Map<string, Set<string>>();
  rows.forEach((row, i) => {
    const allowed = row.split('|')[3]!.trim();
    // "every folder below": the rows under this one.
    const may =
      allowed === 'every folder below'
        ? names.slice(i + 1)
        : [...allowed.matchAll(/`([^`]+)`/g)].map((m) => unit(m[1]!));
    layers.set(names[i]!, new Set(may));
  });
  return layers;
}

function unit(cell: string): string {
  return cell.replace(/`/g, '').trim().replace(/\/$/, '');
}

/** The relative imports of one file (static, re-exports and dynamic import() of a literal). */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^import\s*['"](\.{1,2}\/[^'"]+)['"]/gm,
  )) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec !== undefined) out.push(path.resolve(path.dirname(file), spec));
  }
  return out;
}

/** The wing of a path: its first folder under src/, or the file name for a file at the top. */
function wingOf(file: string): string | undefined {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..')) return undefined;
  const parts = rel.split(path.sep);
  return parts[0];
}

/** Every import of `files` that the layers do not allow, as "from → to" lines. */
function violations(layers: Map<string, Set<string>>, files: readonly { path: string; text: string }[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const from = wingOf(f.path);
    if (from === undefined) continue;
    const isTest = f.path.endsWith('.test.ts');
    for (const target of importsOf(f.path, f.text)) {
      const rel = path.relative(ROOT, target);
      const to = wingOf(target);
      const where = `${path.relative(ROOT, f.path)} → ${rel}`;
      if (to === undefined) {
        const testCode = rel.startsWith(`test${path.sep}support${path.sep}`) || rel.startsWith(`lab${path.sep}`);
        if (!(isTest && testCode)) out.push(`${where}: outside src/`);
        continue;
      }
      if (to === from) continue;
      if (!layers.get(from)?.has(to)) out.push(`${where}: ${from} may not import ${to}`);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mjs)$/.test(e.name) ? [p] : [];
  });
}

describe('layering (docs/architecture.md)', () => {
  const layers = parseLayers(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
  const files = sourceFiles(SRC).map((p) => ({ path: p, text: readFileSync(p, 'utf8') }));

  it('lists every folder and top-level file of src/', () => {
    const wings = new Set(files.map((f) => wingOf(f.path)!));
    expect([...wings].filter((w) => !layers.has(w)).sort()).toEqual([]);
  });

  it('allows only folders it lists', () => {
    const unknown = [...layers.values()].flatMap((s) => [...s]).filter((w) => !layers.has(w));
    expect(unknown).toEqual([]);
  });

  it('is a strict order: no folder may import one that may import it', () => {
    const cycles: string[] = [];
    for (const [a, may] of layers) for (const b of may) if (layers.get(b)?.has(a)) cycles.push(`${a} ↔ ${b}`);
    expect(cycles).toEqual([]);
  });

  it('holds for every import in src/', () => {
    expect(violations(layers, files)).toEqual([]);
  });

  it('finds an upward import, an unlisted folder and an import of test code', () => {
    const f = (rel: string, text: string) => ({ path: path.join(SRC, rel), text });
    expect(
      violations(layers, [
        f('net/mac.ts', "import { x } from '../dhcp/codec.js';"),
        f('dhcp/decide.ts', "export { y } from '../wiring/product.js';"),
        f('boot/arch.ts', "const m = await import('../tftp/packet.js');"),
        f('leases/pool.ts', "import { z } from '../../test/support/netns.js';"),
        f('leases/pool.test.ts', "import { z } from '../../test/support/netns.js';"),
        f('dhcp/decide.test.ts', "import { r } from '../../lab/dhcp-requests.js';"),
        f('dhcp/decide.ts', "import { r } from '../../lab/dhcp-requests.js';"),
        f('dhcp/codec.ts', "import { w } from './options.js';\nimport type { V } from '../net/ipv4.js';"),
      ]),
    ).toEqual([
      'src/net/mac.ts → src/dhcp/codec.js: net may not import dhcp',
      'src/dhcp/decide.ts → src/wiring/product.js: dhcp may not import wiring',
      'src/boot/arch.ts → src/tftp/packet.js: boot may not import tftp',
      'src/leases/pool.ts → test/support/netns.js: outside src/',
      'src/dhcp/decide.ts → lab/dhcp-requests.js: outside src/',
    ]);
  });
});
