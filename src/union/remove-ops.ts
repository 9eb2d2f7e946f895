/**
 * unlink and rmdir. The upper copy (if any) goes; a whiteout is written only when a lower
 * layer still has the name, and then in the same step as the removal where the encoding
 * allows (a char 0/0 whiteout is exchanged with the object). A directory is removable when it
 * is empty in the merged view, even if its upper copy still holds whiteouts.
 */
import { lstatSync, rmSync } from "node:fs";
import { FsError } from "../errors.js";
import { checkName } from "../path/name.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { type ByteName, entryPath, realPath } from "./layer.js";
import { isDirNode, type Link, type UnionNode } from "./node-table.js";
import type { UnionContext } from "./union-context.js";

/** The node `name` leads to, with that name of it. */
export function existingName(u: UnionContext, parent: UnionNode, name: ByteName, syscall: string): Named {
  checkName(name, syscall);
  const node = u.find(parent, name);
  const link = node?.linkAt(parent, name);
  if (node === null || link === undefined) throw new FsError("ENOENT", syscall, name);
  return { node, link };
}

export interface Named {
  node: UnionNode;
  link: Link;
}

export function unlinkEntry(u: UnionContext, parent: UnionNode, name: ByteName): void {
  const named = existingName(u, parent, name, "unlink");
  if (isDirNode(named.node)) throw new FsError("EISDIR", "unlink", named.node.path);
  removeEntry(u, parent, name, named);
}

export function removeDir(u: UnionContext, parent: UnionNode, name: ByteName): void {
  const named = existingName(u, parent, name, "rmdir");
  const { node } = named;
  if (!isDirNode(node)) throw new FsError("ENOTDIR", "rmdir", node.path);
  if (!u.isEmptyDir(node)) throw new FsError("ENOTEMPTY", "rmdir", node.path);
  removeEntry(u, parent, name, named);
}

function removeEntry(u: UnionContext, parent: UnionNode, name: ByteName, { node, link }: Named): void {
  const { writer, copyUp } = u.side();
  const dir = realPath(copyUp.ensureUpper(parent));
  const unlinked = beforeHardlinkRemoval(u, { node, link });
  const below = u.resolver.existsBelow(parent, name);
  if (link.inUpper && below) {
    const moved = writer.replaceWithWhiteout(dir, name);
    rmSync(moved, { recursive: true, force: true });
  } else if (link.inUpper) {
    // an upper-only directory that is empty in the merged view holds at most whiteouts
    rmSync(entryPath(dir, name), { recursive: isDirNode(node) });
  } else if (below) {
    writer.writeWhiteout(dir, name);
  }
  unlinked();
  if (isDirNode(node)) u.upperDirsMoved();
  u.table.unlink(parent, name);
}

/**
 * Removing one name of a lower file with several: as overlayfs with index=on, the name is
 * copied up (into the index) first, so the remaining names stay one file, and afterwards the
 * union's link count is recorded one lower. Returns what to do once the name is gone.
 */
export function beforeHardlinkRemoval(u: UnionContext, { node, link }: Named): () => void {
  if (isDirNode(node) || link.inUpper || node.hardlinkOrigin === null) return () => {};
  const { copyUp, index } = u.side();
  copyUp.ensureUpperLink(node, link);
  const entry = realPath(index.branchFor(node.hardlinkOrigin));
  const before = HardlinkIndex.unionNlink(entry, Number(lstatSync(entry).nlink));
  return () => index.setUnionNlink(entry, before - 1);
}
