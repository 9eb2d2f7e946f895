/**
 * The hard-link index, in the format of overlayfs with index=on: a lower file with several
 * names is copied up once, into `<workdir>/index/<hex of its origin record>`, and every name
 * that is copied up later is a hard link to that one upper inode. So the names stay one file
 * after copy-up: a write through one is seen through the others, even those still lower-only.
 *
 * The union's link count differs from the upper inode's (the index entry is a link, lower-only
 * names are not); overlayfs keeps the difference in `overlay.nlink` as "U+n"/"U-n" relative to
 * the upper inode's count, and so does this.
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { OverlayKey } from "../format/overlay-xattr.js";
import { lstatOrNull, overlayValue } from "../layers/probe.js";
import { lsetxattr } from "../sys/xattr.js";
import { type Branch, type Layer, realPath } from "./layer.js";

export class HardlinkIndex {
  /** the index dir seen as a layer, so an index entry can be a node's data branch */
  readonly layer: Layer;

  /** the index dir, reached through its fd */
  readonly dir: string;

  private constructor(
    fd: number,
    dev: bigint,
    private readonly xattrNamespace: string,
  ) {
    this.dir = `/proc/self/fd/${fd}/.`;
    this.layer = { index: -2, root: this.dir, fd, at: this.dir, writable: true, dev };
  }

  static open(workRoot: string, xattrNamespace: string): HardlinkIndex {
    const dir = join(workRoot, "index");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    return new HardlinkIndex(fd, fstatSync(fd, { bigint: true }).dev, xattrNamespace);
  }

  close(): void {
    closeSync(this.layer.fd);
  }

  branchFor(origin: Buffer): Branch {
    return { layer: this.layer, rel: origin.toString("hex") };
  }

  /** The index entry for an origin, if that file was copied up already. */
  find(origin: Buffer): Branch | null {
    const branch = this.branchFor(origin);
    return lstatOrNull(realPath(branch)) === null ? null : branch;
  }

  /** The union's link count of an upper or index inode: its own, corrected by `overlay.nlink`. */
  static unionNlink(path: Buffer, realNlink: number): number {
    const value = overlayValue(path, OverlayKey.nlink)?.toString("latin1") ?? null;
    const match = value === null ? null : /^U([+-]\d+)$/.exec(value);
    return match?.[1] === undefined ? realNlink : realNlink + Number(match[1]);
  }

  /** Records the union's link count of an indexed inode reached through `path`. */
  setUnionNlink(path: Buffer, unionNlink: number): void {
    const real = Number(lstatSync(path).nlink);
    const diff = unionNlink - real;
    const value = `U${diff < 0 ? "-" : "+"}${Math.abs(diff)}`;
    lsetxattr(path, this.xattrNamespace + OverlayKey.nlink, Buffer.from(value));
  }
}
