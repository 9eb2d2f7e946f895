import { defineConfig } from "vitest/config";

// Mount tests start daemons and kernel mounts; give them room, and keep the unit tests fast.
export default defineConfig({
  // Vite's default leaves .cts (the CommonJS launcher's modules) untranspiled.
  esbuild: { include: /\.(m|c)?ts$/ },
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
