import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores here: more parallel files only make timing-sensitive tests (stalls, kills) flaky.
    maxWorkers: 2,
    pool: 'forks',
    // After each file's own cleanup: its Redis prefixes must be empty (the Redis is shared).
    setupFiles: ['test/support/redis-leak-check.ts'],
  },
});
