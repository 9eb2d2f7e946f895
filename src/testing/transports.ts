/**
 * Transports for mount tests: the read, write, differential, crash and CLI mount suites run
 * once per transport, with the transport's name in their describe titles, as they run once per
 * filesystem layout (fs-layout.ts); where both apply they combine (each transport × each
 * layout). The helpers take the transport as an option (mountUnionfs, mountBoth, mountPair,
 * runSequence); a mount made without one (the store suite's, for one) uses the first selected.
 *
 *   UNIONFS_TRANSPORTS=fuse-native   run only these transports (default: every one registered
 *                                    in src/daemon/transports.ts)
 */
import { TRANSPORT_NAMES } from "../daemon/transports.js";
import { namesFromEnv } from "./env-names.js";

/** The transports this run covers: UNIONFS_TRANSPORTS (comma-separated names), else all of them. */
export function selectedTransports(env: NodeJS.ProcessEnv = process.env): string[] {
  return namesFromEnv("UNIONFS_TRANSPORTS", "transport", TRANSPORT_NAMES, env);
}

/** The transport of a mount made without naming one: the first this run covers. */
export function defaultTransport(env: NodeJS.ProcessEnv = process.env): string {
  return selectedTransports(env)[0] as string;
}

/** The CLI arguments that mount with `transport` (both mount forms take them before the rest). */
export function transportArgs(transport: string): string[] {
  return ["--transport", transport];
}
