/**
 * Cleaning of the untrusted names in a layer tar (entry names and hard-link targets) into
 * layer-relative components, refusing instead of repairing: an archive that names `/etc/passwd`
 * or `a/../../x` is hostile, not sloppy, and is rejected whole.
 *
 * Accepted: `a/b`, `./a/b`, `a//b/`, `a/./b` (all -> ["a", "b"]); `.` and `./` name the layer
 * root (-> []). Refused: absolute names, any `..` component (even one that would stay inside),
 * NUL bytes, components over NAME_MAX bytes, names that were not valid UTF-8 (tar-stream decodes
 * them lossily, so the bytes on disk would not be the archive's).
 */
import { NAME_MAX } from "../path/name.js";
import { StoreError } from "./store-error.js";

/** `unsafePath` is the name exactly as the archive holds it; `what` names it in messages. */
export function cleanEntryPath(unsafePath: string, what = "entry"): string[] {
  const fail = (problem: string, kind: "hostile-entry" | "unsupported" = "hostile-entry") =>
    new StoreError(kind, `${what} '${printable(unsafePath)}': ${problem}`, { entry: unsafePath });
  if (unsafePath.length === 0) throw fail("empty name");
  if (unsafePath.includes("\0")) throw fail("the name contains a NUL byte");
  if (unsafePath.startsWith("/")) throw fail("absolute path");
  if (unsafePath.includes("\uFFFD")) throw fail("the name is not valid UTF-8", "unsupported");
  const components: string[] = [];
  for (const c of unsafePath.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw fail("'..' component");
    if (Buffer.byteLength(c) > NAME_MAX) throw fail(`a component is longer than ${NAME_MAX} bytes`);
    components.push(c);
  }
  return components;
}

/** The error for one archive entry: "entry '<name>': <problem>". */
export function entryError(kind: "hostile-entry" | "unsupported", unsafeName: string, problem: string): StoreError {
  return new StoreError(kind, `entry '${printable(unsafeName)}': ${problem}`, { entry: unsafeName });
}

/** Names for messages: control characters escaped so a hostile name cannot forge output. */
export function printable(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
