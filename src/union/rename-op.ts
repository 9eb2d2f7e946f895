/**
 * rename(2) in the merged view, as overlayfs with redirect_dir=on does it.
 *
 * The source is copied up (a directory: only itself), then moved inside the upper in one
 * rename that leaves a whiteout behind when a lower layer still has the old name
 * (RENAME_WHITEOUT). A directory that exists below gets an absolute `overlay.redirect` to its
 * lower path, so its lower contents follow it; an upper-only directory moved into a merged
 * parent is made opaque, so nothing below the new name shows through. A destination directory
 * (empty in the merged view, maybe holding whiteouts) is first swapped for an empty opaque one.
 * Every step before the final rename leaves the merged view unchanged, so a crash shows the
 * tree either before or after the rename.
 */
import { rmSync } from "node:fs";
import { FsError } from "../errors.js";
import { refuseMetaName } from "../format/whiteout.js";
import { lstatOrNull } from "../layers/probe.js";
import { checkName } from "../path/name.js";
import { AT_FDCWD } from "../sys/libc.js";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2 } from "../sys/rename.js";
import { type ByteName, entryPath, realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import { redirectOf } from "./probe.js";
import { beforeHardlinkRemoval, existingName, type Named } from "./remove-ops.js";
import type { UnionContext } from "./union-context.js";

/** the renameat2 flags overlayfs takes: RENAME_WHITEOUT is refused (EINVAL), as by overlayfs */
const SUPPORTED_FLAGS = RENAME_NOREPLACE | RENAME_EXCHANGE;

export function renameEntry(
  u: UnionContext,
  oldParent: UnionNode,
  oldName: ByteName,
  newParent: UnionNode,
  newName: ByteName,
  flags = 0,
): void {
  const exchange = (flags & RENAME_EXCHANGE) !== 0;
  if ((flags & ~SUPPORTED_FLAGS) !== 0 || (exchange && (flags & RENAME_NOREPLACE) !== 0)) {
    throw new FsError("EINVAL", "rename", oldName);
  }
  checkName(newName, "rename");
  refuseMetaName(newName, "rename");
  const named = existingName(u, oldParent, oldName, "rename");
  const src = named.node;
  if (!isDirNode(newParent)) throw new FsError("ENOTDIR", "rename", newParent.path);
  const dst = u.find(newParent, newName);
  if (dst !== null && (flags & RENAME_NOREPLACE) !== 0) throw new FsError("EEXIST", "rename", dst.path);
  if (exchange) {
    if (dst === null) throw new FsError("ENOENT", "rename", newName);
    const dstLink = dst.linkAt(newParent, newName);
    if (dstLink === undefined) throw new FsError("ENOENT", "rename", newName);
    exchangeEntries(
      u,
      { parent: oldParent, name: oldName, ...named },
      { parent: newParent, name: newName, node: dst, link: dstLink },
    );
    return;
  }
  if (dst !== null) {
    // rename onto itself, or onto another name of the same file: nothing to do (POSIX)
    if (dst === src || (!isDirNode(dst) && !isDirNode(src) && dst.ino === src.ino)) return;
    if (isDirNode(src) && !isDirNode(dst)) throw new FsError("ENOTDIR", "rename", dst.path);
    if (!isDirNode(src) && isDirNode(dst)) throw new FsError("EISDIR", "rename", dst.path);
    if (isDirNode(dst) && !u.isEmptyDir(dst)) throw new FsError("ENOTEMPTY", "rename", dst.path);
  }
  const { writer, copyUp } = u.side();
  const whiteoutAtSource = u.resolver.existsBelow(oldParent, oldName);
  // refused before anything changes: where a directory is exchanged with an upper whiteout
  // below, the source's whiteout is written only once the directory has moved
  if (whiteoutAtSource) writer.checkWhiteoutName(oldName);
  const srcDir = realPath(copyUp.ensureUpper(oldParent));
  const dstDir = realPath(copyUp.ensureUpper(newParent));
  const srcPath = realPath(copyUp.ensureUpperLink(src, named.link));
  markMovedDir(u, src, srcPath, newParent);

  const dstLink = dst?.linkAt(newParent, newName);
  const replaced =
    dst === null || dstLink === undefined ? () => {} : beforeHardlinkRemoval(u, { node: dst, link: dstLink });
  const dstPath = entryPath(dstDir, newName);
  const atDest = lstatOrNull(dstPath);
  let discard: string | null = null;
  if (atDest?.isDirectory() && dst !== null) discard = writer.clearEmptyDir(dstPath);

  if (atDest !== null && !atDest.isDirectory() && dst === null && isDirNode(src)) {
    // The upper holds a whiteout there, which a directory cannot replace: swap the two, then
    // the whiteout stays at the source if a lower name needs hiding there.
    renameat2(AT_FDCWD, srcPath, AT_FDCWD, dstPath, RENAME_EXCHANGE);
    const swapped = entryPath(srcDir, oldName);
    if (!whiteoutAtSource || writer.style !== "chardev") rmSync(swapped, { force: true });
    if (whiteoutAtSource && writer.style !== "chardev") writer.writeWhiteout(srcDir, oldName);
  } else if (whiteoutAtSource) {
    writer.moveLeavingWhiteout(srcDir, oldName, dstPath);
  } else {
    renameat2(AT_FDCWD, srcPath, AT_FDCWD, dstPath, 0);
  }
  writer.dropWhiteoutFile(dstDir, newName);
  if (discard !== null) rmSync(discard, { recursive: true, force: true });
  replaced();
  writer.setImpure(dstDir);
  if (isDirNode(src)) u.upperDirsMoved();
  u.table.move(oldParent, oldName, newParent, newName);
}

/**
 * A directory about to get another name keeps its lower content through an absolute redirect
 * (redirectFor); one that exists only in the upper is made opaque where it lands in a merged
 * parent, so nothing below its new name shows through.
 */
function markMovedDir(u: UnionContext, node: UnionNode, upperPath: Buffer, newParent: UnionNode): void {
  if (!isDirNode(node)) return;
  const { writer } = u.side();
  if (node.lowers.length > 0) writer.setRedirect(upperPath, redirectFor(node));
  else if (newParent.lowers.length > 0) writer.setOpaque(upperPath);
}

/**
 * The redirect overlayfs gives a directory it moves (ovl_get_redirect): its path in the mount,
 * built upwards from its own name, where a directory on the way that carries a redirect in the
 * upper contributes that instead of its name and an absolute one ends the walk. A lookup walks
 * it down again through the same layers, redirects of lower directories included.
 */
function redirectFor(node: UnionNode): ByteName {
  const below: ByteName[] = [];
  for (let n: UnionNode | null = node; n?.parent != null; n = n.parent) {
    const upper = n.upper;
    const own = upper === null ? null : redirectOf(realPath(upper));
    if (own?.absolute) return `/${[...own.parts, ...below].join("/")}`;
    below.unshift(own?.parts[0] ?? n.name);
  }
  return `/${below.join("/")}`;
}

interface Entry extends Named {
  parent: UnionNode;
  name: ByteName;
}

/**
 * RENAME_EXCHANGE: both objects are copied up (directories: only themselves) and swap names in
 * one renameat2 of the upper. No whiteout is needed: both names still exist afterwards.
 */
function exchangeEntries(u: UnionContext, a: Entry, b: Entry): void {
  if (a.node === b.node) return;
  const { writer, copyUp } = u.side();
  const aDir = realPath(copyUp.ensureUpper(a.parent));
  const bDir = realPath(copyUp.ensureUpper(b.parent));
  markMovedDir(u, a.node, realPath(copyUp.ensureUpperLink(a.node, a.link)), b.parent);
  markMovedDir(u, b.node, realPath(copyUp.ensureUpperLink(b.node, b.link)), a.parent);
  renameat2(AT_FDCWD, entryPath(aDir, a.name), AT_FDCWD, entryPath(bDir, b.name), RENAME_EXCHANGE);
  writer.setImpure(aDir);
  writer.setImpure(bDir);
  if (isDirNode(a.node) || isDirNode(b.node)) u.upperDirsMoved();
  u.table.exchange(a.parent, a.name, b.parent, b.name);
}
