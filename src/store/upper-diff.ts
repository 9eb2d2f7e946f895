/**
 * diffUpper: what `docker diff` prints for a container, read from its upper directory and the
 * lower layers (topmost first), sorted bytewise by path, paths absolute:
 * - C: an object of the upper whose name the lowers hold at that path (respecting their
 *   whiteouts and opaque directories), including directories that are only there because
 *   something below them changed;
 * - A: an object of the upper the lowers do not hold; everything below an added directory and
 *   below an opaque directory (the lowers' content there is hidden) is A too;
 * - D: a whiteout that hides something in the lowers. A whiteout over nothing deleted nothing
 *   and is not listed (docker lists it; overlayfs does not write such whiteouts itself);
 * - a redirected (renamed) directory: A with all of its merged content, which is what docker's
 *   naive diff (used whenever overlayfs redirects are on) prints; the old name is D through the
 *   whiteout overlayfs leaves there.
 */

import { lookupChild, type MergedDir, mergedChildren, stackAt, upperChildDir } from "../layers/merge.js";
import { joinBytes, listLayerDir, NONE, readDirFlags } from "../layers/probe.js";

export type ChangeKind = "A" | "C" | "D";

export interface Change {
  kind: ChangeKind;
  /** absolute: "/etc/passwd" */
  path: string;
}

interface RawChange {
  kind: ChangeKind;
  path: Buffer;
}

export async function diffUpper(upper: string, lowers: readonly string[]): Promise<Change[]> {
  const layers = lowers.map((l) => Buffer.from(l));
  const root = Buffer.from(upper);
  const flags = readDirFlags(root);
  const stack = flags.opaque ? [] : stackAt(layers, 0, []);
  const out: RawChange[] = [];
  walkUpper(layers, { upper: { path: root, flags }, stack }, Buffer.alloc(0), out);
  out.sort((a, b) => Buffer.compare(a.path, b.path));
  return out.map((c) => ({ kind: c.kind, path: c.path.toString("utf8") }));
}

function walkUpper(lowers: readonly Buffer[], dir: MergedDir, prefix: Buffer, out: RawChange[]): void {
  if (dir.upper === null) return;
  for (const child of listLayerDir(dir.upper.path, dir.upper.flags)) {
    const path = joinBytes(prefix, child.name);
    const below = dir.stack.length === 0 ? NONE : lookupChild(lowers, dir.stack, child.name);
    const p = child.probe;
    if (p.kind === "whiteout") {
      if (below.kind !== "none") out.push({ kind: "D", path });
      continue;
    }
    const renamed = p.kind === "dir" && p.flags.redirect !== null && !p.flags.opaque;
    out.push({ kind: below.kind === "none" || renamed ? "A" : "C", path });
    if (p.kind !== "dir") continue;
    if (renamed) {
      addAll(lowers, upperChildDir(lowers, dir, child.name, p), path, out);
      continue;
    }
    const stack = p.flags.opaque || below.kind !== "dir" ? [] : below.stack;
    walkUpper(lowers, { upper: { path: p.path, flags: p.flags }, stack }, path, out);
  }
}

/** Everything a mount shows below `dir`, as added. */
function addAll(lowers: readonly Buffer[], dir: MergedDir, prefix: Buffer, out: RawChange[]): void {
  for (const child of mergedChildren(lowers, dir)) {
    const path = joinBytes(prefix, child.name);
    out.push({ kind: "A", path });
    if (child.dir !== null) addAll(lowers, child.dir, path, out);
  }
}
