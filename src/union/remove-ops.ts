/**
 * unlink and rmdir. The upper copy (if any) goes; a whiteout is written only when a lower
 * layer still has the name, and then in the same step as the removal where the encoding
 * allows (a char 0/0 whiteout is exchanged with the object). A directory is removable when it
 * is empty in the merged view, even if its upper copy still holds whiteouts.
 */
import { lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { FsError } from "../errors.js";
import { checkName } from "../path/name.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionFs } from "./union-fs.js";

function existing(u: UnionFs, parent: UnionNode, name: string, syscall: string): UnionNode {
  checkName(name, syscall);
  const node = u.lookup(parent, name);
  if (node === null) throw new FsError("ENOENT", syscall, name);
  return node;
}

export function unlinkEntry(u: UnionFs, parent: UnionNode, name: string): void {
  const node = existing(u, parent, name, "unlink");
  if (isDirNode(node)) throw new FsError("EISDIR", "unlink", node.path);
  removeEntry(u, parent, node);
}

export function removeDir(u: UnionFs, parent: UnionNode, name: string): void {
  const node = existing(u, parent, name, "rmdir");
  if (!isDirNode(node)) throw new FsError("ENOTDIR", "rmdir", node.path);
  if (!u.isEmptyDir(node)) throw new FsError("ENOTEMPTY", "rmdir", node.path);
  removeEntry(u, parent, node);
}

function removeEntry(u: UnionFs, parent: UnionNode, node: UnionNode): void {
  const { writer, copyUp } = u.side();
  const dir = realPath(copyUp.ensureUpper(parent));
  const unlinked = beforeHardlinkRemoval(u, node);
  const below = u.resolver.existsBelow(parent, node.name);
  if (node.upper !== null && below) {
    const moved = writer.replaceWithWhiteout(dir, node.name);
    rmSync(moved, { recursive: true, force: true });
  } else if (node.upper !== null) {
    // an upper-only directory that is empty in the merged view holds at most whiteouts
    rmSync(join(dir, node.name), { recursive: isDirNode(node) });
  } else if (below) {
    writer.writeWhiteout(dir, node.name);
  }
  unlinked();
  if (isDirNode(node)) u.upperDirsMoved();
  u.table.remove(node);
}

/**
 * Removing one name of a lower file with several: as overlayfs with index=on, the name is
 * copied up (into the index) first, so the remaining names stay one file, and afterwards the
 * union's link count is recorded one lower. Returns what to do once the name is gone.
 */
export function beforeHardlinkRemoval(u: UnionFs, node: UnionNode): () => void {
  if (isDirNode(node) || node.upper !== null || node.hardlinkOrigin === null) return () => {};
  const { copyUp, index } = u.side();
  copyUp.ensureUpper(node);
  const entry = realPath(index.branchFor(node.hardlinkOrigin));
  const before = HardlinkIndex.unionNlink(entry, Number(lstatSync(entry).nlink));
  return () => index.setUnionNlink(entry, before - 1);
}
