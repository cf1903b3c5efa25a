/** metalboot's version, from the package.json it ships with. */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function findVersion(): string {
  // This file runs from src/base/ (tsx) or dist/src/base/ (built): try both package.json locations.
  for (const p of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === 'metalboot' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}

export const version = findVersion();
