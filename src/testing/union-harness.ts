/**
 * A path-level driver for the union core, in-process: no FUSE, no mount, no root. Layers are
 * declarative fixtures (fixture.ts) written below a Scratch; the core is built over them with
 * `--whiteout=file` semantics by default (`.wh.` files and `user.overlay.*`), which an
 * unprivileged process can both write and read.
 *
 * Tests speak in mount-relative paths ("a/b", "" for the root), the way the mount suites do; this
 * module turns a path into the core's nodes one component at a time, as a transport does. It is
 * the one place that knows the core's request API, so when that API changes (issue 15: inodes
 * apart from names, setattr with a valid mask, rename flags, opendir/readdir streams) only this
 * file changes, not the tests.
 *
 * Paths are resolved like lstat resolves them: a symlink is never followed, in any component.
 * A path (or symlink target) is text, which stands for its UTF-8 bytes, or a Buffer of raw bytes
 * for a name that is not UTF-8; names come back as text (`listBytes`, `readlinkBytes`: bytes).
 * The core takes byte strings (src/union/layer.ts): this converts, as a transport does.
 * Errors come out as the core throws them (errno-shaped: `code`); `errnoOf` turns a step into
 * "OK" or its code, for tables of expected errnos.
 */
import { constants as fsc, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorCode, FsError } from "../errors.js";
import type { WhiteoutStyle } from "../format/whiteout-style.js";
import { bytesToText, splitPath, textToBytes } from "../path/name.js";
import { mknod } from "../sys/mknod.js";
import { lgetxattr, lsetxattr } from "../sys/xattr.js";
import type { Attr } from "../union/attr.js";
import type { Caller } from "../union/caller.js";
import { openStack } from "../union/layer.js";
import { isDirNode, type UnionNode } from "../union/node-table.js";
import { type DirEntry, UnionFs, type UnionOptions } from "../union/union-fs.js";
import { apply, type Entry, type OpaqueFormat, type WhiteoutFormat } from "./fixture.js";
import type { Scratch } from "./scratch.js";

export interface UnionSpec {
  /** lower layers, topmost first, each a fixture */
  lowers: readonly (readonly Entry[])[];
  /** what the upper holds before the core is built (default: nothing) */
  upper?: readonly Entry[];
  /** core options; `whiteout` defaults to "file" */
  options?: Partial<UnionOptions>;
  /** raw set-up the fixtures cannot say (names as bytes, times in ns), before the core is built */
  prepare?: (paths: StackPaths) => void;
  /** build the core as for a mount on this directory: layers below it are reached by fd */
  mountpoint?: string;
}

export interface StackPaths {
  lowers: string[];
  upper: string;
  work: string;
  mountpoint?: string;
}

/** A mount-relative path: text (its UTF-8 bytes), or raw bytes. */
export type Path = string | Buffer;

/** A path or name as the byte string the core takes. */
function coreBytes(path: Path): string {
  return typeof path === "string" ? textToBytes(path) : path.toString("latin1");
}

/** An open file of the union: what a transport holds between open and release. */
export interface OpenFile {
  readonly fh: number;
  read(length?: number, position?: number): Buffer;
  write(data: string | Buffer, position?: number): number;
  /** the open file's attributes (fstat) */
  stat(): Attr;
  /** ftruncate(2): setattr of the size through this handle */
  truncate(size: number): void;
  /** fchmod(2): setattr of the mode through this handle */
  chmod(mode: number): void;
  close(): void;
}

/** "OK", or the errno code the step threw (anything not errno-shaped is rethrown). */
export function errnoOf(step: () => unknown): string {
  try {
    step();
    return "OK";
  } catch (e) {
    const code = errorCode(e);
    if (code === undefined) throw e;
    return code;
  }
}

/** The calling process as the core's caller: new objects then belong to whoever runs the test. */
export function processCaller(): Caller {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid, umask: 0 };
}

const READ_SIZE = 1 << 20;

const probed = new Map<string, boolean>();

/** Tries `step` once in a fresh temp dir (per `key`, cached): can this process do that? */
function canDo(key: string, step: (dir: string) => void): boolean {
  let ok = probed.get(key);
  if (ok === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "unionfs-probe-"));
    try {
      step(dir);
      ok = true;
    } catch {
      ok = false;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    probed.set(key, ok);
  }
  return ok;
}

const canMakeWhiteoutDevice = () => canDo("chardev", (dir) => mknod(join(dir, "w"), fsc.S_IFCHR, 0));
const canWriteTrusted = () =>
  canDo("trusted", (dir) => {
    writeFileSync(join(dir, "f"), "");
    lsetxattr(join(dir, "f"), "trusted.probe", Buffer.from("y"));
  });

/**
 * Why this process cannot build a layer holding `format` (null: it can). A char 0/0 device
 * needs CAP_MKNOD before Linux 5.8; trusted.* xattrs need CAP_SYS_ADMIN.
 */
export function whiteoutFormatUnavailable(format: WhiteoutFormat): string | null {
  if (format === "chardev" && !canMakeWhiteoutDevice()) return "mknod of a 0/0 device is refused";
  if (format === "xattr" && !canWriteTrusted()) return "trusted.* xattrs are refused";
  return null;
}

export function opaqueFormatUnavailable(format: OpaqueFormat): string | null {
  return format === "trusted" && !canWriteTrusted() ? "trusted.* xattrs are refused" : null;
}

/** Why this process cannot run a core writing `style` (null: it can). */
export function whiteoutStyleUnavailable(style: WhiteoutStyle): string | null {
  if (style === "file") return null;
  return whiteoutFormatUnavailable("chardev") ?? whiteoutFormatUnavailable("xattr");
}

export class UnionHarness {
  private readonly open = new Set<number>();

  private constructor(
    readonly fs: UnionFs,
    readonly paths: StackPaths,
    /** who the operations that create objects act for (default: this process) */
    public caller: Caller,
    private readonly options: UnionOptions,
    private readonly scratch: Scratch,
  ) {
    scratch.onCleanup(() => this.shutDown());
  }

  /** Writes the fixtures below `scratch` (lower0.., upper, work) and builds the core over them. */
  static async open(scratch: Scratch, spec: UnionSpec): Promise<UnionHarness> {
    const paths: StackPaths = {
      lowers: spec.lowers.map((_, i) => scratch.path(`lower${i}`)),
      upper: scratch.path("upper"),
      work: scratch.path("work"),
      mountpoint: spec.mountpoint,
    };
    spec.lowers.forEach((entries, i) => {
      apply(paths.lowers[i] as string, entries);
    });
    apply(paths.upper, spec.upper ?? []);
    mkdirSync(paths.work, { recursive: true, mode: 0o700 });
    spec.prepare?.(paths);
    return UnionHarness.over(scratch, paths, { whiteout: "file", ...spec.options });
  }

  private static async over(scratch: Scratch, paths: StackPaths, options: UnionOptions): Promise<UnionHarness> {
    const stack = await openStack({ lowers: paths.lowers, upper: paths.upper, work: paths.work }, paths.mountpoint);
    return new UnionHarness(await UnionFs.create(stack, options), paths, processCaller(), options, scratch);
  }

  /**
   * A new core over the same directories, as a remount is: this one's files are closed and
   * nothing it knew (nodes, caches) carries over. Options default to this one's.
   */
  async remount(options: Partial<UnionOptions> = {}): Promise<UnionHarness> {
    this.shutDown();
    return UnionHarness.over(this.scratch, this.paths, { ...this.options, ...options });
  }

  /** Releases every file still open and closes the core's layers, once. */
  private shutDown(): void {
    if (this.down) return;
    this.down = true;
    this.close();
    this.fs.close();
  }

  private down = false;

  /** Releases every file still open. */
  close(): void {
    for (const fh of this.open) this.fs.release(fh);
    this.open.clear();
  }

  /** Real paths into the layers, for checking what the core wrote. */
  upper(rel = ""): string {
    return join(this.paths.upper, rel);
  }

  lower(index: number, rel = ""): string {
    const root = this.paths.lowers[index];
    if (root === undefined) throw new Error(`no lower ${index}`);
    return join(root, rel);
  }

  work(rel = ""): string {
    return join(this.paths.work, rel);
  }

  /** How this core writes whiteouts and its private xattrs. */
  get style(): WhiteoutStyle {
    return this.fs.side().writer.style;
  }

  /** The overlay xattr `key` ("opaque", "redirect", "origin", ...) of an upper object, in this core's namespace. */
  upperXattr(rel: string, key: string): Buffer | null {
    return lgetxattr(this.upper(rel), this.fs.side().writer.xattrNamespace + key);
  }

  /**
   * What an upper directory holds, read from disk without the core: its entries and the names it
   * whites out, each sorted. A whiteout in the other style's encoding is an error.
   */
  upperListing(rel = ""): { names: string[]; whiteouts: string[] } {
    const { names, whiteouts } = this.upperListingBytes(rel);
    const text = (list: Buffer[]) => list.map((n) => n.toString("utf8")).sort();
    return { names: text(names), whiteouts: text(whiteouts) };
  }

  /** upperListing with the names as the bytes on disk, sorted bytewise. */
  upperListingBytes(rel = ""): { names: Buffer[]; whiteouts: Buffer[] } {
    const names: Buffer[] = [];
    const whiteouts: Buffer[] = [];
    const dir = this.upper(rel);
    for (const name of readdirSync(dir, { encoding: "buffer" })) {
      const st = lstatSync(Buffer.concat([Buffer.from(`${dir}/`), name]));
      const file = name.subarray(0, 4).toString() === ".wh." && name.toString() !== ".wh..wh..opq";
      const device = st.isCharacterDevice() && st.rdev === 0;
      if (!file && !device) {
        names.push(name);
        continue;
      }
      if ((file ? "file" : "chardev") !== this.style) {
        throw new Error(`${join(rel, name.toString())}: a whiteout in another style`);
      }
      whiteouts.push(file ? name.subarray(4) : name);
    }
    return { names: names.sort(Buffer.compare), whiteouts: whiteouts.sort(Buffer.compare) };
  }

  // --- resolving paths --------------------------------------------------------------------

  /** The node at `path`, null when the last component is missing; ENOENT/ENOTDIR above it. */
  lookup(path: Path): UnionNode | null {
    const parts = splitPath(coreBytes(path));
    let node = this.fs.table.root;
    for (const [i, name] of parts.entries()) {
      if (!isDirNode(node)) throw new FsError("ENOTDIR", "lookup", String(path));
      const child = this.fs.find(node, name);
      if (child === null) {
        if (i === parts.length - 1) return null;
        throw new FsError("ENOENT", "lookup", String(path));
      }
      node = child;
    }
    return node;
  }

  node(path: Path): UnionNode {
    const node = this.lookup(path);
    if (node === null) throw new FsError("ENOENT", "lookup", String(path));
    return node;
  }

  exists(path: Path): boolean {
    return this.lookup(path) !== null;
  }

  private parentOf(path: Path): { parent: UnionNode; name: string } {
    const parts = splitPath(coreBytes(path));
    const name = parts.pop();
    if (name === undefined) throw new FsError("EBUSY", "lookup", String(path));
    const parent = this.node(Buffer.from(parts.join("/"), "latin1"));
    if (!isDirNode(parent)) throw new FsError("ENOTDIR", "lookup", String(path));
    return { parent, name };
  }

  // --- reading ----------------------------------------------------------------------------

  stat(path: Path): Attr {
    return this.fs.getattr(this.node(path));
  }

  /** The listing as the core returns it: `.` and `..` included, with d_ino and type; names as text. */
  readdir(path: Path): DirEntry[] {
    return this.fs.readdir(this.node(path)).map((e) => ({ ...e, name: bytesToText(e.name) }));
  }

  /** The names in a directory as text, `.` and `..` left out, in the core's order. */
  list(path: Path): string[] {
    return this.listBytes(path).map((n) => n.toString("utf8"));
  }

  /** The names as the bytes the layers hold (what getdents64 would hand the kernel). */
  listBytes(path: Path): Buffer[] {
    return this.fs
      .readdir(this.node(path))
      .filter((e) => e.name !== "." && e.name !== "..")
      .map((e) => Buffer.from(e.name, "latin1"));
  }

  /** The symlink's target as text. */
  readlink(path: Path): string {
    return bytesToText(this.fs.readlink(this.node(path)));
  }

  /** The symlink's target as the bytes the layer holds. */
  readlinkBytes(path: Path): Buffer {
    return Buffer.from(this.fs.readlink(this.node(path)), "latin1");
  }

  readFile(path: Path): Buffer {
    const file = this.openFile(path, fsc.O_RDONLY);
    try {
      const chunks: Buffer[] = [];
      for (let pos = 0; ; ) {
        const chunk = file.read(READ_SIZE, pos);
        if (chunk.length === 0) break;
        chunks.push(chunk);
        pos += chunk.length;
      }
      return Buffer.concat(chunks);
    } finally {
      file.close();
    }
  }

  readText(path: Path): string {
    return this.readFile(path).toString("utf8");
  }

  getxattr(path: Path, name: string): Buffer | null {
    return this.fs.getxattr(this.node(path), name);
  }

  listxattr(path: Path): string[] {
    return this.fs.listxattr(this.node(path));
  }

  access(path: Path, mask: number): void {
    this.fs.access(this.node(path), mask);
  }

  // --- open files -------------------------------------------------------------------------

  /** open(2) of an existing object (no O_CREAT: see `create`). */
  openFile(path: Path, flags: number): OpenFile {
    const node = this.node(path);
    return this.handle(node, this.fs.open(node, flags));
  }

  /** create(2) with O_EXCL: a new file, open for reading and writing. */
  create(path: Path, mode = 0o644): OpenFile {
    const { parent, name } = this.parentOf(path);
    const { node, fh } = this.fs.create(parent, name, mode, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, this.caller);
    return this.handle(node, fh);
  }

  private handle(node: UnionNode, fh: number): OpenFile {
    const fs = this.fs;
    this.open.add(fh);
    return {
      fh,
      read: (length = READ_SIZE, position = 0) => {
        const buf = Buffer.alloc(length);
        return buf.subarray(0, fs.read(fh, buf, length, position));
      },
      write: (data, position = 0) => {
        const buf = Buffer.from(data);
        return fs.write(fh, buf, buf.length, position);
      },
      stat: () => fs.getattr(node, fh),
      truncate: (size) => {
        fs.setattr(node, { size }, fh);
      },
      chmod: (mode) => {
        fs.setattr(node, { mode }, fh);
      },
      close: () => {
        if (this.open.delete(fh)) fs.release(fh);
      },
    };
  }

  /** Replaces a file's content (O_TRUNC), creating the file when it is missing. */
  writeFile(path: Path, data: string | Buffer, mode = 0o644): void {
    const file = this.exists(path) ? this.openFile(path, fsc.O_WRONLY | fsc.O_TRUNC) : this.create(path, mode);
    try {
      file.write(data, 0);
    } finally {
      file.close();
    }
  }

  /** Writes `data` at `position` of an existing file, keeping the rest. */
  writeAt(path: Path, data: string | Buffer, position: number): void {
    const file = this.openFile(path, fsc.O_WRONLY);
    try {
      file.write(data, position);
    } finally {
      file.close();
    }
  }

  // --- changing the tree ------------------------------------------------------------------

  mkdir(path: Path, mode = 0o755): void {
    const { parent, name } = this.parentOf(path);
    this.fs.mkdir(parent, name, mode, this.caller);
  }

  mknod(path: Path, mode: number, rdev = 0): void {
    const { parent, name } = this.parentOf(path);
    this.fs.mknod(parent, name, mode, rdev, this.caller);
  }

  symlink(target: Path, path: Path): void {
    const { parent, name } = this.parentOf(path);
    this.fs.symlink(parent, name, coreBytes(target), this.caller);
  }

  /** link(2): `path` becomes another name of `existing`. */
  ln(existing: Path, path: Path): void {
    const source = this.node(existing);
    const { parent, name } = this.parentOf(path);
    this.fs.link(source, parent, name, this.caller);
  }

  /** unlink(2) */
  rm(path: Path): void {
    const { parent, name } = this.parentOf(path);
    this.fs.unlink(parent, name);
  }

  rmdir(path: Path): void {
    const { parent, name } = this.parentOf(path);
    this.fs.rmdir(parent, name);
  }

  /** renameat2(2), flags RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT as numbers */
  mv(from: Path, to: Path, flags = 0): void {
    const src = this.parentOf(from);
    const dst = this.parentOf(to);
    this.fs.rename(src.parent, src.name, dst.parent, dst.name, flags);
  }

  // --- attributes -------------------------------------------------------------------------

  chmod(path: Path, mode: number): void {
    this.fs.setattr(this.node(path), { mode });
  }

  chown(path: Path, uid: number, gid: number): void {
    this.fs.setattr(this.node(path), { uid, gid });
  }

  /** utimensat(2) with times in nanoseconds since the epoch. */
  utimens(path: Path, atimeNs: bigint, mtimeNs: bigint): void {
    this.fs.setattr(this.node(path), { atime: atimeNs, mtime: mtimeNs });
  }

  truncate(path: Path, size: number): void {
    this.fs.setattr(this.node(path), { size });
  }

  setxattr(path: Path, name: string, value: string | Buffer, flags = 0): void {
    this.fs.setxattr(this.node(path), name, Buffer.from(value), flags);
  }

  removexattr(path: Path, name: string): void {
    this.fs.removexattr(this.node(path), name);
  }
}
