import { defineConfig } from 'vitest/config';

// Root-only suites (network namespaces, real VIPs) run one file at a time: they
// share the kernel's namespace list and bridge names, and the machine has 2 cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
