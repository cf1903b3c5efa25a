import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere Node runs (pure code, loopback sockets, fastify inject;
// also the tests of lab/ and of bench/'s pure parts);
// `e2e` needs root, network namespaces and the real clients that .ci/run installs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'src/**/*.test.ts',
            'test/integration/**/*.test.ts',
            'test/architecture/**/*.test.ts',
            'lab/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
          // bench/out/build holds the copies of src/ (tests included) that benchmarks compile.
          exclude: ['**/node_modules/**', 'bench/out/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
