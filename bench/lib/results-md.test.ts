import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { replaceSection, subsection, writeResultsSection } from './results-md.js';

const RESULTS = [
  '# Benchmark results',
  '',
  '## TFTP',
  '',
  'tftp table',
  '',
  '### Reading it',
  '',
  'tftp notes',
  '',
  '## DHCP',
  '',
  'old dhcp',
  '',
  '### Rates',
  '',
  'old rates',
  '',
  '## DHCP codec',
  '',
  'codec table',
  '',
].join('\n');

describe('replaceSection', () => {
  it('replaces one section with its subsections and leaves the others as they were', () => {
    const out = replaceSection(RESULTS, 'DHCP', 'new dhcp\n\n### Rates\n\nnew rates');
    expect(out).toBe(RESULTS.replace('old dhcp\n\n### Rates\n\nold rates', 'new dhcp\n\n### Rates\n\nnew rates'));
  });

  it('matches the whole heading: ## DHCP is not ## DHCP codec', () => {
    const out = replaceSection(RESULTS, 'DHCP codec', 'new codec');
    expect(out).toContain('old dhcp');
    expect(out.endsWith('## DHCP codec\n\nnew codec\n')).toBe(true);
  });

  it('appends a section that is not there yet', () => {
    expect(replaceSection('# Benchmark results\n', 'HTTP', 'table')).toBe('# Benchmark results\n\n## HTTP\n\ntable\n');
  });

  it('tolerates trailing spaces on the heading line and trims the body', () => {
    expect(replaceSection('# R\n\n## HTTP  \n\nold\n', 'HTTP', '\n\nnew\n\n')).toBe('# R\n\n## HTTP\n\nnew\n');
  });

  it('is idempotent', () => {
    const once = replaceSection(RESULTS, 'TFTP', 'x');
    expect(replaceSection(once, 'TFTP', 'x')).toBe(once);
  });
});

describe('subsection', () => {
  it('finds a ### subsection of one section, up to the next heading', () => {
    expect(subsection(RESULTS, 'TFTP', 'Reading it')).toBe('### Reading it\n\ntftp notes');
    expect(subsection(RESULTS, 'DHCP', 'Rates')).toBe('### Rates\n\nold rates');
  });

  it('does not look into other sections', () => {
    expect(subsection(RESULTS, 'DHCP', 'Reading it')).toBeUndefined();
  });

  it('is undefined without the section', () => {
    expect(subsection(RESULTS, 'Boot storm', 'Reading it')).toBeUndefined();
  });
});

describe('writeResultsSection', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the file with its preamble, then replaces in place without leaving temporary files', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bench-results-'));
    const file = path.join(dir, 'RESULTS.md');
    writeResultsSection('HTTP', 'first', file);
    expect(readFileSync(file, 'utf8')).toBe(
      '# Benchmark results\n\nMeasured by the scripts in this directory; see [README.md](README.md) for how to run them.\n\n## HTTP\n\nfirst\n',
    );
    writeResultsSection('HTTP', 'second', file);
    expect(readFileSync(file, 'utf8')).toMatch(/## HTTP\n\nsecond\n$/);
    expect(readdirSync(dir)).toEqual(['RESULTS.md']);
  });

  it('keeps what other benchmarks wrote', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bench-results-'));
    const file = path.join(dir, 'RESULTS.md');
    writeFileSync(file, RESULTS);
    writeResultsSection('DHCP codec', 'new codec', file);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('tftp notes');
    expect(text).toContain('old rates');
    expect(existsSync(`${file}.${process.pid}.tmp`)).toBe(false);
  });
});
