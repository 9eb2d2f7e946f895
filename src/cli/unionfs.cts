#!/usr/bin/env node
/**
 * The `unionfs` command (package.json "bin"). CommonJS on purpose: `unionfs run` should cost
 * little more than Node's own start-up, and a CommonJS entry never starts Node's ES module
 * loader. So `run` goes to dist/cli/run.cjs, a bundle of run-main.ts loaded with its V8 code
 * cache (bundle-loader.cts, which the build inlines here: Node's first require() of a file
 * costs ~0.5 ms); every other command goes to the ES module CLI, main.js, which can also run
 * everything on its own (a build made without the bundle falls back to it).
 */
import { join } from "node:path";
import { loadBundle } from "./bundle-loader.cjs";
import type { runMain } from "./run-main.js";

const RUN_BUNDLE = join(__dirname, "run.cjs");

function loadRun(): typeof runMain | null {
  try {
    // our require resolves as the bundle's would: it lives in this directory
    return (loadBundle(RUN_BUNDLE, require).exports as { runMain: typeof runMain }).runMain;
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT" && (e as { path?: unknown }).path === RUN_BUNDLE) return null;
    throw e;
  }
}

const run = process.argv[2] === "run" ? loadRun() : null;
if (run === null) {
  void import("./main.js");
} else {
  // runMain reports every failure itself and never rejects
  void run(process.argv.slice(3)).then((code) => process.exit(code));
}
