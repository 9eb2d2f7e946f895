#!/usr/bin/env node
/**
 * The unionfs entry point, and the only place that exits. It loads as little as it can before
 * dispatching: `unionfs run` must start fast, so it never loads commander, the store or the
 * FUSE code it does not use. A UserError (or StoreError) is one line on stderr; anything else
 * is an internal error printed with a hint to report it.
 */
import { UserError } from "../errors.js";
import { StoreError } from "../store/store-error.js";
import { isDaemonChild, reportToParent } from "./daemonize.js";

async function dispatch(argv: readonly string[]): Promise<number> {
  if (argv[2] === "run") return (await import("./run-command.js")).runCommand(argv.slice(3));
  if (argv[2] === "bench") return (await import("./bench-command.js")).benchCommand(argv.slice(3));
  const program = await import("./program.js");
  return program.main(argv);
}

function fail(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("commander.")) {
    const exitCode = (e as { exitCode?: number }).exitCode ?? 2;
    return code === "commander.helpDisplayed" || code === "commander.version" ? 0 : exitCode === 0 ? 0 : 2;
  }
  if (e instanceof StoreError) return fail(new UserError(e.message));
  if (e instanceof UserError) {
    reportToParent({ error: e.message });
    if (!isDaemonChild()) process.stderr.write(`unionfs: ${e.message}\n`);
    return e.exitCode;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  reportToParent({ error: `internal error: ${message.split("\n")[0]}` });
  process.stderr.write(`unionfs: internal error (please report it): ${message}\n`);
  return 70;
}

dispatch(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => process.exit(fail(e)),
);
