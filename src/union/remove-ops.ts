/**
 * unlink and rmdir. The upper copy (if any) goes; a whiteout is written only when a lower
 * layer still has the name, and then in the same step as the removal where the encoding
 * allows (a char 0/0 whiteout is exchanged with the object). A directory is removable when it
 * is empty in the merged view, even if its upper copy still holds whiteouts.
 */
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { FsError } from "../errors.js";
import { checkName } from "../path/name.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionFs } from "./union-fs.js";

async function existing(u: UnionFs, parent: UnionNode, name: string, syscall: string): Promise<UnionNode> {
  checkName(name, syscall);
  const node = await u.lookup(parent, name);
  if (node === null) throw new FsError("ENOENT", syscall, name);
  return node;
}

export async function unlinkEntry(u: UnionFs, parent: UnionNode, name: string): Promise<void> {
  const node = await existing(u, parent, name, "unlink");
  if (isDirNode(node)) throw new FsError("EISDIR", "unlink", node.path);
  await removeEntry(u, parent, node);
}

export async function removeDir(u: UnionFs, parent: UnionNode, name: string): Promise<void> {
  const node = await existing(u, parent, name, "rmdir");
  if (!isDirNode(node)) throw new FsError("ENOTDIR", "rmdir", node.path);
  if (!(await u.isEmptyDir(node))) throw new FsError("ENOTEMPTY", "rmdir", node.path);
  await removeEntry(u, parent, node);
}

async function removeEntry(u: UnionFs, parent: UnionNode, node: UnionNode): Promise<void> {
  const { writer, copyUp } = u.side();
  const dir = realPath(await copyUp.ensureUpper(parent));
  const unlinked = await beforeHardlinkRemoval(u, node);
  const below = u.resolver.existsBelow(parent, node.name);
  if (node.upper !== null && below) {
    const moved = await writer.replaceWithWhiteout(dir, node.name);
    await rm(moved, { recursive: true, force: true });
  } else if (node.upper !== null) {
    // an upper-only directory that is empty in the merged view holds at most whiteouts
    await rm(join(dir, node.name), { recursive: isDirNode(node) });
  } else if (below) {
    await writer.writeWhiteout(dir, node.name);
  }
  await unlinked();
  u.table.remove(node);
}

/**
 * Removing one name of a lower file with several: as overlayfs with index=on, the name is
 * copied up (into the index) first, so the remaining names stay one file, and afterwards the
 * union's link count is recorded one lower. Returns what to do once the name is gone.
 */
export async function beforeHardlinkRemoval(u: UnionFs, node: UnionNode): Promise<() => Promise<void>> {
  if (isDirNode(node) || node.upper !== null || node.hardlinkOrigin === null) return async () => {};
  const { copyUp, index } = u.side();
  await copyUp.ensureUpper(node);
  const entry = realPath(index.branchFor(node.hardlinkOrigin));
  const before = HardlinkIndex.unionNlink(entry, Number((await lstat(entry)).nlink));
  return () => index.setUnionNlink(entry, before - 1);
}
