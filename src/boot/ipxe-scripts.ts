/**
 * Renders the iPXE scripts from `ipxe-templates/` (or a user directory overriding any of them)
 * with Eta. Every interpolated value is checked for iPXE safety: a value with whitespace,
 * control characters or a `${` would change the script's meaning, so it is refused rather than
 * rendered (configuration values are validated at start-up, so this is a last line of defence).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

export const TEMPLATE_NAMES = ['boot', 'fallback', 'inspector', 'installer', 'localboot', 'retry'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** ipxe-templates/ at the package root: two levels up from src/boot, three from dist/src/boot. */
export const BUILTIN_TEMPLATES_DIR = ['../../ipxe-templates', '../../../ipxe-templates']
  .map((rel) => path.resolve(path.dirname(fileURLToPath(import.meta.url)), rel))
  .find((dir) => existsSync(path.join(dir, 'boot.ipxe'))) ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ipxe-templates');

export class UnsafeValueError extends Error {
  readonly code = 'METALBOOT_IPXE_UNSAFE_VALUE';
}

/**
 * A line break would start a new iPXE command and `${…}` is expanded by iPXE: neither may be
 * injected. (Values placed in command arguments, URLs and kernel parameters, are validated
 * without whitespace when the configuration loads.)
 */
export function ipxeEscape(value: unknown): string {
  const s = String(value);
  if (/[\x00-\x1f\x7f]/.test(s)) throw new UnsafeValueError(`value ${JSON.stringify(s)} contains a line break or control character`);
  if (s.includes('${')) throw new UnsafeValueError(`value ${JSON.stringify(s)} contains an iPXE expansion`);
  return s;
}

export class IpxeScripts {
  readonly #eta: Eta;
  readonly sources: Readonly<Record<TemplateName, string>>;

  /** Loads every template once; a user directory overrides the built-in templates by name. */
  constructor(userDir: string | undefined, builtinDir = BUILTIN_TEMPLATES_DIR) {
    this.#eta = new Eta({ autoEscape: true, escapeFunction: ipxeEscape, autoTrim: false, useWith: false });
    const sources = {} as Record<TemplateName, string>;
    for (const name of TEMPLATE_NAMES) {
      const user = userDir === undefined ? undefined : path.join(userDir, `${name}.ipxe`);
      const file = user !== undefined && existsSync(user) ? user : path.join(builtinDir, `${name}.ipxe`);
      sources[name] = readFileSync(file, 'utf8');
      this.#eta.loadTemplate(`@${name}`, sources[name]);
    }
    this.sources = sources;
  }

  render(name: TemplateName, data: Record<string, unknown>): string {
    return this.#eta.render(`@${name}`, data);
  }
}
