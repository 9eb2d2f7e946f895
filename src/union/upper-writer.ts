/**
 * Primitive changes to the upper directory in overlayfs's on-disk format: whiteouts (char 0/0,
 * or `.wh.` files where the daemon cannot write the kernel's encoding), opaque marks, and
 * installing an object assembled in the work dir with one rename.
 *
 * A directory is its realPath (a Buffer), a name a byte string (see layer.ts); work-dir temps
 * are plain ASCII paths.
 */
import { constants as fsc, mkdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { FsError, hasCode } from "../errors.js";
import { OPAQUE_YES, OverlayKey } from "../format/overlay-xattr.js";
import { WHITEOUT_PREFIX, whiteoutFileName } from "../format/whiteout.js";
import {
  resolveWhiteoutStyle,
  type WhiteoutChoice,
  type WhiteoutStyle,
  xattrNamespaceOf,
} from "../format/whiteout-style.js";
import { lstatOrNull } from "../layers/probe.js";
import { NAME_MAX } from "../path/name.js";
import { AT_FDCWD, type PathLike } from "../sys/libc.js";
import { mknod } from "../sys/mknod.js";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, renameat2 } from "../sys/rename.js";
import { lgetxattr, lsetxattr } from "../sys/xattr.js";
import { type ByteName, entryPath } from "./layer.js";
import type { WorkDir } from "./work-dir.js";

/**
 * "auto" writes the kernel's encoding (char 0/0, trusted.overlay.*) where the daemon can, found
 * out by trying it in the work dir; else `.wh.` files and user.overlay.*.
 */
export function chooseWhiteoutStyle(choice: WhiteoutChoice, work: WorkDir): WhiteoutStyle {
  return resolveWhiteoutStyle(choice, work.tempPath());
}

export class UpperWriter {
  constructor(
    readonly work: WorkDir,
    readonly style: WhiteoutStyle,
  ) {}

  /** Makes `tmp` appear at `dest`; false if something is already there (the loser of a race). */
  installNew(tmp: PathLike, dest: PathLike): boolean {
    try {
      renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE);
      return true;
    } catch (e) {
      if (hasCode(e, "EEXIST")) return false;
      throw e;
    }
  }

  /**
   * Puts `tmp` at `dir/name`, where the merged view shows nothing: whatever the upper holds
   * there is a whiteout (char 0/0 or an xattr whiteout) and is swapped out in the same step.
   */
  installOverWhiteout(tmp: string, dir: Buffer, name: ByteName): void {
    const dest = entryPath(dir, name);
    if (lstatOrNull(dest) !== null) {
      renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_EXCHANGE);
      rmSync(tmp, { recursive: true, force: true });
    } else {
      renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE);
    }
    rmWhiteoutFile(dir, name);
  }

  /** Whether the upper holds a whiteout for a name the merged view does not show. */
  hasWhiteout(dir: Buffer, name: ByteName): boolean {
    if (lstatOrNull(entryPath(dir, name)) !== null) return true;
    const file = whiteoutFilePath(dir, name);
    return file !== null && lstatOrNull(file) !== null;
  }

  /** Creates a whiteout for `name` in `dir`, where nothing else is. */
  writeWhiteout(dir: Buffer, name: ByteName): void {
    if (this.style === "chardev") {
      const tmp = this.whiteoutInWork();
      if (!this.installNew(tmp, entryPath(dir, name))) unlinkSync(tmp);
    } else {
      writeFileSync(requireWhiteoutFilePath(dir, name), "", { mode: 0o600 });
    }
  }

  /** Replaces the object at `dir/name` with a whiteout in one step; returns where it went. */
  replaceWithWhiteout(dir: Buffer, name: ByteName): string {
    const target = entryPath(dir, name);
    const moved = this.work.tempPath();
    if (this.style === "chardev") {
      const tmp = this.whiteoutInWork();
      renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE);
      return tmp;
    }
    // .wh. files can't be exchanged with the object: write the whiteout first, then move the object.
    withWhiteoutFile(dir, name, () => renameat2(AT_FDCWD, target, AT_FDCWD, moved, RENAME_NOREPLACE));
    return moved;
  }

  /**
   * Renames `srcDir/srcName` to `dest` and leaves a whiteout at the source: in one step with
   * RENAME_WHITEOUT (char 0/0), else the `.wh.` file first so the lower name never shows.
   */
  moveLeavingWhiteout(srcDir: Buffer, srcName: ByteName, dest: Buffer): void {
    const src = entryPath(srcDir, srcName);
    if (this.style === "chardev") {
      renameat2(AT_FDCWD, src, AT_FDCWD, dest, RENAME_WHITEOUT);
      return;
    }
    withWhiteoutFile(srcDir, srcName, () => renameat2(AT_FDCWD, src, AT_FDCWD, dest, 0));
  }

  /**
   * Throws ENAMETOOLONG when a whiteout for `name` cannot be written in this style (a `.wh.`
   * file for a name of 252..255 bytes): asked before a step that would need one afterwards.
   */
  checkWhiteoutName(name: ByteName): void {
    if (this.style !== "chardev" && !fitsWhiteoutFile(name)) throw new FsError("ENAMETOOLONG", "whiteout", name);
  }

  /** Removes a `.wh.` whiteout file for a name that now has an upper object. */
  dropWhiteoutFile(dir: Buffer, name: ByteName): void {
    rmWhiteoutFile(dir, name);
  }

  whiteoutInWork(): string {
    const tmp = this.work.tempPath();
    mknod(tmp, fsc.S_IFCHR | 0o000, 0);
    return tmp;
  }

  setOpaque(path: PathLike): void {
    lsetxattr(path, this.xattrNamespace + OverlayKey.opaque, Buffer.from(OPAQUE_YES));
  }

  /**
   * Records where a renamed directory's lower copies live (an absolute path in the layers).
   * A redirect too long for the upper's filesystem to store refuses the rename with EXDEV, as
   * overlayfs refuses one longer than its redirect_max: tools then copy the directory instead.
   */
  setRedirect(path: Buffer, redirect: ByteName): void {
    try {
      lsetxattr(path, this.xattrNamespace + OverlayKey.redirect, Buffer.from(redirect, "latin1"));
    } catch (e) {
      if (hasCode(e, "ENOSPC", "E2BIG", "ERANGE")) throw new FsError("EXDEV", "rename", redirect);
      throw e;
    }
  }

  /**
   * Marks a directory as holding children copied up from elsewhere, so the kernel reports
   * their origin's inode numbers in readdir as unionfs does.
   */
  setImpure(dir: Buffer): void {
    const name = this.xattrNamespace + OverlayKey.impure;
    if (lgetxattr(dir, name) === null) lsetxattr(dir, name, Buffer.from(OPAQUE_YES));
  }

  /**
   * Swaps a directory that is empty in the merged view (but may hold whiteouts) for an empty
   * opaque one in one step, as overlayfs does before replacing it; returns the old one's new
   * place in the work dir, for removal.
   */
  clearEmptyDir(path: Buffer): string {
    const tmp = this.work.tempPath();
    mkdirSync(tmp, 0o700);
    this.setOpaque(tmp);
    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE);
    return tmp;
  }

  /** The namespace private xattrs (origin, redirect) are written in. */
  get xattrNamespace(): string {
    return xattrNamespaceOf(this.style);
  }
}

/** Where a `.wh.` whiteout file for `name` goes; null when the name is too long to have one. */
function whiteoutFilePath(dir: Buffer, name: ByteName): Buffer | null {
  return fitsWhiteoutFile(name) ? entryPath(dir, whiteoutFileName(name)) : null;
}

/** Whether `.wh.<name>` stays within NAME_MAX. */
function fitsWhiteoutFile(name: ByteName): boolean {
  return name.length <= NAME_MAX - WHITEOUT_PREFIX.length;
}

function requireWhiteoutFilePath(dir: Buffer, name: ByteName): Buffer {
  const path = whiteoutFilePath(dir, name);
  // a `.wh.` file cannot record the deletion of a 252..255-byte name
  if (path === null) throw new FsError("ENAMETOOLONG", "whiteout", name);
  return path;
}

/**
 * Writes the `.wh.` file for `name`, then runs `step`; if the step fails, a `.wh.` file written
 * here goes again: left next to the object, it would make a directory read as opaque (AUFS).
 */
function withWhiteoutFile(dir: Buffer, name: ByteName, step: () => void): void {
  const path = requireWhiteoutFilePath(dir, name);
  const made = lstatOrNull(path) === null;
  if (made) writeFileSync(path, "", { mode: 0o600 });
  try {
    step();
  } catch (e) {
    if (made) rmSync(path, { force: true });
    throw e;
  }
}

function rmWhiteoutFile(dir: Buffer, name: ByteName): void {
  const path = whiteoutFilePath(dir, name);
  if (path !== null) rmSync(path, { force: true });
}
