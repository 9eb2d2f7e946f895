#!/usr/bin/env node
// @ts-check
// `npm run bench [-- OPTIONS]`: the storage-driver comparison (`unionfs bench`, see
// src/cli/bench-command.ts), or with `micro` first the benny micro benchmarks of src/union.

const argv = process.argv.slice(2);
try {
  if (argv[0] === "micro") {
    const { runMicro } = await import("./micro/run.mjs");
    process.exitCode = await runMicro(argv.slice(1));
  } else {
    const { benchCommand } = await import("../dist/cli/bench-command.js");
    process.exitCode = await benchCommand(argv);
  }
} catch (e) {
  const user = e instanceof Error && e.name === "UserError";
  process.stderr.write(`bench: ${user ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = user ? 1 : 70;
}
