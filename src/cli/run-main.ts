/**
 * `unionfs run` as a whole program: the command and the report of anything it throws, as one
 * exit status. The launcher (unionfs.cts) loads this through dist/cli/run.cjs, a CommonJS
 * bundle of it made at build time with a V8 code cache (tools/bundle-run.mjs); main.ts
 * imports it as an ES module. Either way the process exits with what this returns.
 */
import type { RunOptions } from "../runner/run.js";
import { reportFailure } from "./failure.js";
import { runCommand } from "./run-command.js";

/**
 * Runs `unionfs run ARGV...`; never rejects. This process may hand the run over and become its
 * waiter (see `handover` in runner/run.ts): it has nothing else to do.
 */
export function runMain(argv: string[], opts: RunOptions = {}): Promise<number> {
  return runCommand(argv, { handover: true, ...opts }).catch(reportFailure);
}
