import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_TEMPLATES_DIR,
  IpxeScripts,
  TEMPLATE_FIELDS,
  TEMPLATE_NAMES,
  type TemplateName,
} from './ipxe-scripts.js';
import { parseMac } from '../net/mac.js';

/** The `it.<field>` names a template reads. */
function fieldsRead(source: string): string[] {
  return [...new Set([...source.matchAll(/\bit\.([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!))].sort();
}

describe('template data', () => {
  it.each(TEMPLATE_NAMES.map((n) => [n] as const))(
    'built-in %s.ipxe reads only the fields the routes pass',
    (name: TemplateName) => {
      const source = readFileSync(path.join(BUILTIN_TEMPLATES_DIR, `${name}.ipxe`), 'utf8');
      const read = fieldsRead(source);
      expect(read.length).toBeGreaterThan(0);
      expect(read.filter((f) => !(f in TEMPLATE_FIELDS[name]))).toEqual([]);
    },
  );

  it('finds a field a template reads but is not given', () => {
    expect(
      fieldsRead('kernel <%= it.kernelUrl %> <%= it.nosuch %>').filter((f) => !(f in TEMPLATE_FIELDS.localboot)),
    ).toEqual(['nosuch']);
  });

  it('renders the typed data into the script', () => {
    const scripts = new IpxeScripts(undefined);
    const text = scripts.render('localboot', {
      host: 'node-1',
      mac: parseMac('52:54:00:00:00:01')!,
      why: 'provisioned',
      baseUrl: 'http://10.0.0.1:8080',
      apiUrl: 'http://10.0.0.1:8080',
      kernelUrl: 'http://10.0.0.1:8080/k',
      initramfsUrl: 'http://10.0.0.1:8080/i',
      initramfsName: 'i',
    });
    expect(text).toContain('node-1');
    expect(text).toContain('52:54:00:00:00:01');
  });
});
