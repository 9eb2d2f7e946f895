/**
 * The one gate for tests that need the host's root: they mount (kernel overlayfs, tmpfs, FUSE
 * with allow_other), make cgroups or namespaces. Without it they are skipped, each with the
 * reason in its name, so a run as another user says what it did not test.
 */
import { describe } from "vitest";
import { isHostAdmin } from "../sys/privilege.js";

export const IS_HOST_ROOT = isHostAdmin();

const REASON = "needs root in the initial user namespace: it mounts";

/** `describe`, skipped (and saying why) where the process is not the host's root. */
export function describeAsRoot(name: string, fn: () => void): void {
  if (IS_HOST_ROOT) describe(name, fn);
  else describe.skip(`${name} [skipped: ${REASON}]`, fn);
}
