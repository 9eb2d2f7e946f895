/**
 * The transports a mount can be served by, by name (`unionfs mount --transport NAME`). An entry
 * loads its transport only when a mount asks for it, so choosing one never loads the code (or
 * the native library) of another, and this module imports no transport at load time.
 *
 * Adding a transport is one entry here; the mount suites run once per registered name (see
 * src/testing/transports.ts, `UNIONFS_TRANSPORTS`).
 */
import { UserError } from "../errors.js";
import { mayMountDirectly } from "../sys/privilege.js";
import type { Transport } from "./transport.js";

export interface TransportEntry {
  readonly name: string;
  /** one line for `--help` */
  readonly summary: string;
  /**
   * Checks what this transport needs of the host beyond /dev/fuse (a library, a kernel
   * feature); throws a UserError with one line naming the problem.
   */
  preflight(): Promise<void>;
  /** the transport itself, loaded on first use */
  load(): Promise<Transport>;
}

const TRANSPORTS: readonly TransportEntry[] = [
  {
    name: "fuse-native",
    summary: "libfuse 2.9 through the fuse-native binding, on the event loop",
    preflight: async () => {
      const { checkFusermount, loadFuseBinding } = await import("../fuse/preflight.js");
      if (!mayMountDirectly()) await checkFusermount();
      await loadFuseBinding();
    },
    load: async () => (await import("../fuse/transport.js")).fuseNativeTransport,
  },
  {
    name: "devfuse",
    summary: "the kernel's FUSE protocol spoken directly on /dev/fuse, from a worker thread",
    preflight: async () => {
      // where it may not mount(2), it mounts through fusermount3, as libfuse 3 does
      if (!mayMountDirectly() && (await import("../sys/fusermount.js")).findFusermount() === null) {
        throw new UserError(
          "fusermount3 not found: a non-root mount with --transport devfuse needs it (apt-get install fuse3)",
        );
      }
    },
    load: async () => (await import("../devfuse/transport.js")).devfuseTransport,
  },
];

export const TRANSPORT_NAMES: readonly string[] = TRANSPORTS.map((t) => t.name);

export const DEFAULT_TRANSPORT = "fuse-native";

/** The entry called `name`; a name not registered is a one-line UserError listing those that are. */
export function transportNamed(name: string): TransportEntry {
  const entry = TRANSPORTS.find((t) => t.name === name);
  if (entry === undefined) {
    throw new UserError(`unknown transport '${name}' (known: ${TRANSPORT_NAMES.join(", ")})`);
  }
  return entry;
}
