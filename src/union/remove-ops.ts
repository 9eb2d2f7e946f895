/**
 * unlink and rmdir. The upper copy (if any) goes; a whiteout is written only when a lower
 * layer still has the name, and then in the same step as the removal where the encoding
 * allows (a char 0/0 whiteout is exchanged with the object). A directory is removable when it
 * is empty in the merged view, even if its upper copy still holds whiteouts.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { FsError } from "../errors.js";
import { checkName } from "../path/name.js";
import { realPath } from "./layer.js";
import type { UnionNode } from "./node-table.js";
import type { UnionFs } from "./union-fs.js";

async function existing(u: UnionFs, parent: UnionNode, name: string, syscall: string): Promise<UnionNode> {
  checkName(name, syscall);
  const node = await u.lookup(parent, name);
  if (node === null) throw new FsError("ENOENT", syscall, name);
  return node;
}

export async function unlinkEntry(u: UnionFs, parent: UnionNode, name: string): Promise<void> {
  const node = await existing(u, parent, name, "unlink");
  if (node.isDir) throw new FsError("EISDIR", "unlink", node.path);
  await removeEntry(u, parent, node);
}

export async function removeDir(u: UnionFs, parent: UnionNode, name: string): Promise<void> {
  const node = await existing(u, parent, name, "rmdir");
  if (!node.isDir) throw new FsError("ENOTDIR", "rmdir", node.path);
  if (!(await u.isEmptyDir(node))) throw new FsError("ENOTEMPTY", "rmdir", node.path);
  await removeEntry(u, parent, node);
}

async function removeEntry(u: UnionFs, parent: UnionNode, node: UnionNode): Promise<void> {
  const { writer, copyUp } = u.side();
  const dir = realPath(await copyUp.ensureUpper(parent));
  const below = await u.resolver.existsBelow(parent, node.name);
  if (node.upper !== null && below) {
    const moved = await writer.replaceWithWhiteout(dir, node.name);
    await rm(moved, { recursive: true, force: true });
  } else if (node.upper !== null) {
    // an upper-only directory that is empty in the merged view holds at most whiteouts
    await rm(join(dir, node.name), { recursive: node.isDir });
  } else if (below) {
    await writer.writeWhiteout(dir, node.name);
  }
  u.table.remove(node);
}
