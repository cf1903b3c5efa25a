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
import type { Mac } from '../net/mac.js';
import { MetalbootError } from '../base/errors.js';

export const TEMPLATE_NAMES = ['boot', 'fallback', 'inspector', 'installer', 'localboot', 'retry'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** What every host's script (inspector, installer, local boot, retry) is rendered with. */
export interface HostScriptData {
  /** The host's name in its source (the BareMetalHost's name). */
  readonly host: string;
  readonly mac: Mac;
  /** Why this script: the provisioning state and the rule that chose it. */
  readonly why: string;
  readonly baseUrl: string;
  readonly apiUrl: string;
  readonly kernelUrl: string;
  readonly initramfsUrl: string;
  readonly initramfsName: string;
}

/**
 * The data of each template: `it.<field>` in the template. A user's template may use any field
 * of its own row; the routes must pass all of them (the compiler checks).
 */
export interface TemplateData {
  readonly boot: { readonly baseUrl: string };
  readonly fallback: { readonly baseUrl: string; readonly annotationPrefix: string; readonly retrySeconds: number };
  readonly inspector: HostScriptData & {
    readonly collectors: string;
    readonly callbackUrl: string;
    readonly extraParams: readonly string[];
  };
  readonly installer: HostScriptData & { readonly extraParams: readonly string[] };
  readonly localboot: HostScriptData;
  readonly retry: HostScriptData & { readonly retrySeconds: number; readonly macHexHyp: string };
}

const HOST_FIELDS = {
  host: true,
  mac: true,
  why: true,
  baseUrl: true,
  apiUrl: true,
  kernelUrl: true,
  initramfsUrl: true,
  initramfsName: true,
} as const;

/** The fields of each template, as data (the compiler holds it equal to TemplateData). */
export const TEMPLATE_FIELDS: { readonly [N in TemplateName]: Readonly<Record<keyof TemplateData[N], true>> } = {
  boot: { baseUrl: true },
  fallback: { baseUrl: true, annotationPrefix: true, retrySeconds: true },
  inspector: { ...HOST_FIELDS, collectors: true, callbackUrl: true, extraParams: true },
  installer: { ...HOST_FIELDS, extraParams: true },
  localboot: HOST_FIELDS,
  retry: { ...HOST_FIELDS, retrySeconds: true, macHexHyp: true },
};

/** ipxe-templates/ at the package root: two levels up from src/boot, three from dist/src/boot. */
export const BUILTIN_TEMPLATES_DIR =
  ['../../ipxe-templates', '../../../ipxe-templates']
    .map((rel) => path.resolve(path.dirname(fileURLToPath(import.meta.url)), rel))
    .find((dir) => existsSync(path.join(dir, 'boot.ipxe'))) ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ipxe-templates');

/**
 * A line break would start a new iPXE command and `${…}` is expanded by iPXE: neither may be
 * injected. (Values placed in command arguments, URLs and kernel parameters, are validated
 * without whitespace when the configuration loads.)
 */
export function ipxeEscape(value: unknown): string {
  const s = String(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
  if (/[\x00-\x1f\x7f]/.test(s))
    throw new MetalbootError(
      'IPXE_ERR_UNSAFE_VALUE',
      `value ${JSON.stringify(s)} contains a line break or control character`,
    );
  if (s.includes('${'))
    throw new MetalbootError('IPXE_ERR_UNSAFE_VALUE', `value ${JSON.stringify(s)} contains an iPXE expansion`);
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

  render<N extends TemplateName>(name: N, data: TemplateData[N]): string {
    return this.#eta.render(`@${name}`, data);
  }
}
