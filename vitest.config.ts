import { defineConfig } from "vitest/config";

// Mount tests start daemons and kernel mounts; give them room, and keep the unit tests fast.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
