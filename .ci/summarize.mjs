// Prints "N passed, N failed" over every vitest JSON report given; a missing report (a suite
// that crashed before reporting) counts as one failure.
import { existsSync, readFileSync } from 'node:fs';

// Checks run outside vitest (the Dockerfile's install steps) arrive as EXTRA_PASSED/EXTRA_FAILED.
let passed = Number(process.env.EXTRA_PASSED ?? 0);
let failed = Number(process.env.EXTRA_FAILED ?? 0);
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.error(`${file}: no report (the suite did not run to the end)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  // A file that failed to load has no tests but counts as a failure.
  for (const s of r.testResults ?? []) if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
