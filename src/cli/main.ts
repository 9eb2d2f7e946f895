#!/usr/bin/env node
/**
 * The unionfs CLI as an ES module, and (with the launcher, unionfs.cts) the only place that
 * exits. It loads as little as it can before dispatching: `unionfs run` must start fast, so it
 * never loads commander, the store or the FUSE code it does not use.
 */
import { reportFailure } from "./failure.js";

async function dispatch(argv: readonly string[]): Promise<number> {
  if (argv[2] === "run") return (await import("./run-main.js")).runMain(argv.slice(3));
  if (argv[2] === "bench") return (await import("./bench-command.js")).benchCommand(argv.slice(3));
  const program = await import("./program.js");
  return program.main(argv);
}

dispatch(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => process.exit(reportFailure(e)),
);
