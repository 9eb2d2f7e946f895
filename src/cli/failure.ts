/**
 * What a failed command prints and exits with; shared by both entries (main.ts, run-main.ts).
 * A UserError (or StoreError) is one line on stderr; a commander parse error has already been
 * printed by commander; anything else is an internal error printed with a hint to report it.
 * A daemon child reports to its waiting parent instead, whose stderr the user sees.
 */
import { UserError } from "../errors.js";
import { StoreError } from "../store/store-error.js";
import { isDaemonChild, reportToParent } from "./daemon-report.js";

/** Exit status for an internal error (sysexits' EX_SOFTWARE). */
const EXIT_INTERNAL = 70;

/** Reports `e` and returns the status to exit with. */
export function reportFailure(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("commander.")) {
    const exitCode = (e as { exitCode?: number }).exitCode ?? 2;
    return code === "commander.helpDisplayed" || code === "commander.version" ? 0 : exitCode === 0 ? 0 : 2;
  }
  if (e instanceof StoreError) return reportFailure(new UserError(e.message));
  if (e instanceof UserError) {
    reportToParent({ error: e.message });
    if (!isDaemonChild()) process.stderr.write(`unionfs: ${e.message}\n`);
    return e.exitCode;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  reportToParent({ error: `internal error: ${message.split("\n")[0]}` });
  process.stderr.write(`unionfs: internal error (please report it): ${message}\n`);
  return EXIT_INTERNAL;
}
