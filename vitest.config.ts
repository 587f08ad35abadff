import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The engine's CPU backend already uses every core; parallel files would only contend.
    fileParallelism: false,
  },
});
