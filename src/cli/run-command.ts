/**
 * `unionfs run`: parse, start the run, pass our signals on, print what the run reports, return
 * its status. Imports only the runner's start-up path, so `unionfs run` costs little more than
 * Node's own start (run-main.ts is the entry that loads it).
 */
import { UserError } from "../errors.js";
import { EXIT_SETUP, type RunOptions, startRun } from "../runner/run.js";
import { parseRunArgs, RUN_USAGE } from "../runner/run-spec.js";

/** Signals `unionfs run` passes on to the command: native/forwarded-signals.h's list. */
const FORWARDED: readonly NodeJS.Signals[] = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGALRM",
  "SIGCONT",
];

export async function runCommand(argv: string[], opts: RunOptions = {}): Promise<number> {
  try {
    const spec = parseRunArgs(argv);
    if (spec === null) {
      process.stdout.write(RUN_USAGE);
      return 0;
    }
    const run = startRun(spec, opts);
    const handlers = FORWARDED.map((sig) => {
      const handler = () => run.signal(sig);
      process.on(sig, handler);
      return () => process.off(sig, handler);
    });
    try {
      const outcome = await run.done;
      if (outcome.error !== undefined) process.stderr.write(`unionfs: ${outcome.error}\n`);
      for (const note of outcome.notes) process.stderr.write(`unionfs: ${note}\n`);
      return outcome.code;
    } finally {
      for (const off of handlers) off();
    }
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    process.stderr.write(`unionfs: ${e.message}\n`);
    return EXIT_SETUP;
  }
}
