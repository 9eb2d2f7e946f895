/**
 * One request in, one reply out: decodes a request read from /dev/fuse, runs it on the union
 * core synchronously and writes the reply on the fd it came from. Nothing here waits on
 * anything but the system calls the core makes, so a thread running this loop needs no event
 * loop.
 *
 * Replies: every request gets exactly one, except FORGET, BATCH_FORGET and INTERRUPT, which
 * get none (the kernel treats a reply to them as an error). A throw becomes the errno reply
 * (EIO for the unexpected, logged). ENOSYS is only sent where the kernel's memory of it is
 * wanted: it never sends that opcode again on this connection and falls back (STATX to
 * GETATTR, COPY_FILE_RANGE_64 to COPY_FILE_RANGE, TMPFILE to EOPNOTSUPP).
 */
import { constants as fsc, writeSync } from "node:fs";
import { FsError, type Logger, toErrno } from "../errors.js";
import { RENAME_EXCHANGE } from "../sys/rename.js";
import type { Caller } from "../union/caller.js";
import { isDirNode, type UnionNode } from "../union/node-table.js";
import type { AttrChanges } from "../union/setattr-ops.js";
import type { UnionFs } from "../union/union-fs.js";
import {
  direntSize,
  readName,
  readU64,
  writeAttrOut,
  writeDirent,
  writeEntry,
  writeOpen,
  writeStatfs,
  writeU64,
} from "./codec.js";
import { PassthroughOpens } from "./passthrough.js";
import {
  Fattr,
  Fopen,
  FUSE_FSYNC_FDATASYNC,
  FUSE_GETATTR_FH,
  FUSE_OPEN_KILL_SUIDGID,
  FUSE_WRITE_KILL_SUIDGID,
  InHeader,
  MAX_WRITE,
  Notify,
  OP_NAMES,
  Op,
  Size,
} from "./protocol.js";

const H = Size.IN_HEADER;
const O = Size.OUT_HEADER;
const NS_PER_S = 1_000_000_000n;
const ENOSYS = 38;
const ENOENT = 2;
/** the layers change only through the mount: the kernel may keep what it learns */
const CACHE_VALID_S = 86400;
/** the data of a file changes only through this mount, so the kernel's page cache stays valid */
const FILE_OPEN_FLAGS = Fopen.KEEP_CACHE | Fopen.NOFLUSH;
const WRITE_ACCESS = fsc.O_WRONLY | fsc.O_RDWR;

export interface DispatchOptions {
  /** fuse_setxattr_in carries setxattr_flags (FUSE_SETXATTR_EXT was agreed) */
  readonly setxattrExt: boolean;
  /** the kernel agreed to FUSE passthrough */
  readonly passthrough: boolean;
  readonly debug: boolean;
  readonly log: Logger;
}

export class Dispatcher {
  /** the request being handled, as read */
  private req: Buffer = Buffer.alloc(0);
  private len = 0;
  /** set once DESTROY was answered: the loop ends */
  destroyed = false;
  /** directories whose cached listing goes stale once this request is answered (see rename) */
  private readonly relisted: UnionNode[] = [];
  private readonly notice = Buffer.alloc(Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE);
  private readonly passthrough: PassthroughOpens;

  constructor(
    private readonly fs: UnionFs,
    private readonly devFd: number,
    /** where replies are assembled: room for a header and the largest READ */
    private readonly out: Buffer,
    private readonly options: DispatchOptions,
  ) {
    this.passthrough = new PassthroughOpens(devFd, options.passthrough, options.log);
  }

  /** Handles the request of `len` bytes in `req`. */
  handle(req: Buffer, len: number): void {
    this.req = req;
    this.len = len;
    const opcode = req.readUInt32LE(InHeader.OPCODE);
    if (this.options.debug) this.trace(opcode);
    let size: number;
    try {
      size = this.run(opcode);
    } catch (e) {
      this.reply(toErrno(e, this.options.log), 0);
      return;
    }
    if (size >= 0) this.reply(0, size);
    while (this.relisted.length > 0) this.forgetListing(this.relisted.pop() as UnionNode);
  }

  private trace(opcode: number): void {
    const nodeid = this.req.readBigUInt64LE(InHeader.NODEID);
    this.options.log(`${OP_NAMES.get(opcode) ?? `op ${opcode}`} node ${nodeid}`);
  }

  /** Writes the reply header for `error` (0 or a negative errno) and `size` bytes of payload. */
  private reply(error: number, size: number): void {
    const total = O + (error === 0 ? size : 0);
    this.out.writeUInt32LE(total, 0);
    this.out.writeInt32LE(error, 4);
    this.req.copy(this.out, 8, InHeader.UNIQUE, InHeader.UNIQUE + 8);
    try {
      writeSync(this.devFd, this.out, 0, total);
    } catch (e) {
      // the request was interrupted or its caller is gone: nobody waits for the answer
      if ((e as { errno?: number }).errno !== -ENOENT && (e as { code?: string }).code !== "ENOENT") throw e;
    }
  }

  /**
   * Tells the kernel to drop its cached attributes of `node` (FUSE_NOTIFY_INVAL_INODE with a
   * negative offset: the page cache stays), when it holds the node at all. Safe within a
   * request: the kernel takes no lock a pending request could hold.
   */
  forgetAttrs(node: UnionNode): void {
    this.invalidate(node, -1n);
  }

  /**
   * killpriv v2: the set-id bits and capability of the file open as `fh` go; the kernel, which
   * cached its mode, is told to ask again (it does not after a WRITE).
   */
  private killPrivileges(fh: number): void {
    if (this.fs.killPrivileges(fh)) this.forgetAttrs(this.fs.nodeOf(fh));
  }

  /** Tells the kernel to drop the listing it caches of directory `node` (its page cache). */
  private forgetListing(node: UnionNode): void {
    this.invalidate(node, 0n);
  }

  private invalidate(node: UnionNode, offset: bigint): void {
    if (node.nlookup === 0) return;
    const n = this.notice;
    n.writeUInt32LE(Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE, 0);
    n.writeInt32LE(Notify.INVAL_INODE, 4);
    n.writeBigUInt64LE(0n, 8);
    n.writeBigUInt64LE(node.id, O);
    n.writeBigInt64LE(offset, O + 8);
    n.writeBigInt64LE(0n, O + 16);
    try {
      writeSync(this.devFd, n, 0, O + Size.NOTIFY_INVAL_INODE);
    } catch (e) {
      // the kernel had already let the inode go
      if ((e as { code?: string }).code !== "ENOENT") throw e;
    }
  }

  private node(): UnionNode {
    return this.fs.node(this.req.readBigUInt64LE(InHeader.NODEID));
  }

  private caller(): Caller {
    const r = this.req;
    return {
      uid: r.readUInt32LE(InHeader.UID),
      gid: r.readUInt32LE(InHeader.GID),
      pid: r.readUInt32LE(InHeader.PID),
      umask: 0,
    };
  }

  private name(at: number): string {
    return readName(this.req, at, this.len).name;
  }

  /** An xattr name: text, as the core's xattr calls take it (a file name is a byte string). */
  private xattrName(at: number): string {
    return readName(this.req, at, this.len, "utf8").name;
  }

  /** Runs the request; returns the payload size to reply with, or -1 when no reply is due. */
  private run(opcode: number): number {
    const r = this.req;
    switch (opcode) {
      case Op.LOOKUP:
        return this.lookup();
      case Op.FORGET:
        this.fs.forget(r.readBigUInt64LE(InHeader.NODEID), readU64(r, H));
        return -1;
      case Op.BATCH_FORGET:
        this.batchForget();
        return -1;
      case Op.INTERRUPT:
        // every request is answered before the next is read: there is nothing to interrupt
        return -1;
      case Op.GETATTR: {
        const fh = (r.readUInt32LE(H) & FUSE_GETATTR_FH) !== 0 ? readU64(r, H + 8) : undefined;
        writeAttrOut(this.out, O, this.fs.getattr(this.node(), fh), CACHE_VALID_S);
        return Size.ATTR_OUT;
      }
      case Op.SETATTR:
        return this.setattr();
      case Op.READLINK: {
        const target = this.fs.readlink(this.node());
        return this.out.write(target, O, "latin1");
      }
      case Op.SYMLINK: {
        const { name, end } = readName(r, H, this.len);
        const target = this.name(end);
        return this.entry(this.fs.symlink(this.node(), name, target, this.caller()));
      }
      case Op.MKNOD:
        return this.entry(
          this.fs.mknod(this.node(), this.name(H + 16), r.readUInt32LE(H), r.readUInt32LE(H + 4), this.caller()),
        );
      case Op.MKDIR:
        return this.entry(this.fs.mkdir(this.node(), this.name(H + 8), r.readUInt32LE(H), this.caller()));
      case Op.UNLINK:
        this.fs.unlink(this.node(), this.name(H));
        return 0;
      case Op.RMDIR:
        this.fs.rmdir(this.node(), this.name(H));
        return 0;
      case Op.RENAME:
        return this.rename(H + 8, 0);
      case Op.RENAME2:
        return this.rename(H + 16, r.readUInt32LE(H + 8));
      case Op.LINK: {
        const source = this.fs.node(r.readBigUInt64LE(H));
        return this.entry(this.fs.link(source, this.node(), this.name(H + 8), this.caller()));
      }
      case Op.OPEN: {
        const node = this.node();
        const flags = r.readUInt32LE(H);
        const fh = this.fs.open(node, flags);
        this.opened(node, fh, flags, O, (r.readUInt32LE(H + 4) & FUSE_OPEN_KILL_SUIDGID) !== 0);
        return Size.OPEN_OUT;
      }
      case Op.READ: {
        const size = Math.min(r.readUInt32LE(H + 16), this.out.length - O);
        return this.fs.read(readU64(r, H), this.out.subarray(O), size, readU64(r, H + 8));
      }
      case Op.WRITE: {
        const size = r.readUInt32LE(H + 16);
        const at = H + Size.WRITE_IN;
        const fh = readU64(r, H);
        const written = this.fs.write(fh, r.subarray(at, at + size), size, readU64(r, H + 8));
        if (r.readUInt32LE(H + 20) & FUSE_WRITE_KILL_SUIDGID) this.killPrivileges(fh);
        this.out.writeUInt32LE(written, O);
        this.out.writeUInt32LE(0, O + 4);
        return Size.WRITE_OUT;
      }
      case Op.STATFS:
        writeStatfs(this.out, O, this.fs.statfs());
        return Size.STATFS_OUT;
      case Op.RELEASE: {
        const fh = readU64(r, H);
        this.passthrough.released(fh);
        this.fs.release(fh);
        return 0;
      }
      case Op.FSYNC:
        this.fs.fsync(readU64(r, H), (r.readUInt32LE(H + 8) & FUSE_FSYNC_FDATASYNC) !== 0);
        return 0;
      case Op.FLUSH:
        // opens say FOPEN_NOFLUSH; a flush that comes anyway has nothing to do
        return 0;
      case Op.SETXATTR:
        return this.setxattr();
      case Op.GETXATTR: {
        const value = this.fs.getxattr(this.node(), this.xattrName(H + 8));
        if (value === null) throw new FsError("ENODATA", "getxattr");
        return this.sized(value, r.readUInt32LE(H));
      }
      case Op.LISTXATTR: {
        const names = this.fs.listxattr(this.node());
        return this.sized(Buffer.from(names.map((n) => `${n}\0`).join(""), "utf8"), r.readUInt32LE(H));
      }
      case Op.REMOVEXATTR:
        this.fs.removexattr(this.node(), this.xattrName(H));
        return 0;
      case Op.OPENDIR:
        // Directories are read by offset alone (see readdir): with OPENDIR refused, the kernel
        // stops sending it and RELEASEDIR, and keeps and checks its listing cache itself.
        this.reply(-ENOSYS, 0);
        return -1;
      case Op.READDIR:
        return this.readdir(false);
      case Op.READDIRPLUS:
        return this.readdir(true);
      case Op.RELEASEDIR:
        // never sent once OPENDIR was refused; nothing was opened
        return 0;
      case Op.FSYNCDIR:
        // directory changes are made durable by the operations that make them
        return 0;
      case Op.ACCESS:
        this.fs.access(this.node(), r.readUInt32LE(H));
        return 0;
      case Op.CREATE:
        return this.create();
      case Op.FALLOCATE:
        this.fs.fallocate(readU64(r, H), r.readUInt32LE(H + 24), readU64(r, H + 8), readU64(r, H + 16));
        return 0;
      case Op.LSEEK:
        writeU64(this.out, O, this.fs.lseek(readU64(r, H), readU64(r, H + 8), r.readUInt32LE(H + 16)));
        return Size.LSEEK_OUT;
      case Op.COPY_FILE_RANGE: {
        const copied = this.fs.copyFileRange(
          readU64(r, H),
          readU64(r, H + 8),
          readU64(r, H + 24),
          readU64(r, H + 32),
          Math.min(readU64(r, H + 40), MAX_WRITE * 64),
          readU64(r, H + 48),
        );
        this.out.writeUInt32LE(copied, O);
        this.out.writeUInt32LE(0, O + 4);
        return Size.WRITE_OUT;
      }
      case Op.DESTROY:
        this.destroyed = true;
        return 0;
      default:
        this.reply(-ENOSYS, 0);
        return -1;
    }
  }

  /** The reply to an entry-creating request: the kernel now holds a reference to `node`. */
  private entry(node: UnionNode): number {
    this.fs.ref(node);
    writeEntry(this.out, O, node.id, this.fs.getattr(node), CACHE_VALID_S);
    return Size.ENTRY_OUT;
  }

  private lookup(): number {
    const node = this.fs.lookup(this.node(), this.name(H));
    if (node === null) {
      writeEntry(this.out, O, 0n, null, CACHE_VALID_S);
      return Size.ENTRY_OUT;
    }
    try {
      writeEntry(this.out, O, node.id, this.fs.getattr(node), CACHE_VALID_S);
    } catch (e) {
      this.fs.forget(node.id, 1);
      throw e;
    }
    return Size.ENTRY_OUT;
  }

  private batchForget(): void {
    const r = this.req;
    const count = r.readUInt32LE(H);
    for (let i = 0, at = H + 8; i < count && at + Size.FORGET_ONE <= this.len; i++, at += Size.FORGET_ONE) {
      this.fs.forget(r.readBigUInt64LE(at), readU64(r, at + 8));
    }
  }

  private setattr(): number {
    const r = this.req;
    const valid = r.readUInt32LE(H);
    const changes: AttrChanges = {};
    if (valid & Fattr.MODE) changes.mode = r.readUInt32LE(H + 68);
    if (valid & Fattr.UID) changes.uid = r.readUInt32LE(H + 76);
    if (valid & Fattr.GID) changes.gid = r.readUInt32LE(H + 80);
    if (valid & Fattr.SIZE) changes.size = readU64(r, H + 16);
    if (valid & Fattr.ATIME) changes.atime = valid & Fattr.ATIME_NOW ? "now" : timeAt(r, H + 32, H + 56);
    if (valid & Fattr.MTIME) changes.mtime = valid & Fattr.MTIME_NOW ? "now" : timeAt(r, H + 40, H + 60);
    if (valid & Fattr.KILL_SUIDGID) changes.killPrivileges = true;
    const fh = valid & Fattr.FH ? readU64(r, H + 8) : undefined;
    writeAttrOut(this.out, O, this.fs.setattr(this.node(), changes, fh), CACHE_VALID_S);
    return Size.ATTR_OUT;
  }

  private rename(namesAt: number, flags: number): number {
    const r = this.req;
    const { name: oldName, end } = readName(r, namesAt, this.len);
    const newName = this.name(end);
    const oldParent = this.node();
    const newParent = this.fs.node(r.readBigUInt64LE(H));
    // only a move to another parent changes what a directory lists (its `..`)
    const moved = oldParent === newParent ? [] : [this.fs.find(oldParent, oldName)];
    if (moved.length > 0 && flags & RENAME_EXCHANGE) moved.push(this.fs.find(newParent, newName));
    this.fs.rename(oldParent, oldName, newParent, newName, flags);
    // its `..` in the kernel's cached listing is the old parent's
    for (const node of moved) if (node !== null && isDirNode(node)) this.relisted.push(node);
    return 0;
  }

  private create(): number {
    const r = this.req;
    const parent = this.node();
    const { node, fh } = this.fs.create(
      parent,
      this.name(H + 16),
      r.readUInt32LE(H + 4),
      r.readUInt32LE(H),
      this.caller(),
    );
    try {
      writeEntry(this.out, O, node.id, this.fs.getattr(node, fh), CACHE_VALID_S);
      this.opened(node, fh, r.readUInt32LE(H), O + Size.ENTRY_OUT, false);
    } catch (e) {
      this.fs.release(fh);
      throw e;
    }
    this.fs.ref(node);
    return Size.ENTRY_OUT + Size.OPEN_OUT;
  }

  /**
   * Writes the fuse_open_out of file `fh` of `node`, opened with `flags`, at `at`: passed
   * through, or served here (see passthrough.ts for which). `truncated`: the kernel flagged an
   * O_TRUNC open by a caller without CAP_FSETID, which clears set-id bits as a write does. A
   * failure gives the file back.
   */
  private opened(node: UnionNode, fh: number, flags: number, at: number, truncated: boolean): void {
    try {
      // root keeps set-id bits when it writes (CAP_FSETID); anyone else's writes clear them
      const guarded = (flags & WRITE_ACCESS) !== 0 && this.caller().uid !== 0;
      const { backingId, unguardedWrites } = this.passthrough.opened(node.id, fh, this.fs.upperFd(fh), guarded);
      if (truncated || unguardedWrites) this.killPrivileges(fh);
      if (backingId === null) writeOpen(this.out, at, fh, FILE_OPEN_FLAGS);
      else writeOpen(this.out, at, fh, Fopen.PASSTHROUGH | Fopen.NOFLUSH, backingId);
    } catch (e) {
      this.passthrough.released(fh);
      this.fs.release(fh);
      throw e;
    }
  }

  private setxattr(): number {
    const r = this.req;
    const size = r.readUInt32LE(H);
    const flags = r.readUInt32LE(H + 4);
    const { name, end } = readName(
      r,
      H + (this.options.setxattrExt ? Size.SETXATTR_IN : Size.SETXATTR_IN_COMPAT),
      this.len,
      "utf8",
    );
    this.fs.setxattr(this.node(), name, Buffer.from(r.subarray(end, end + size)), flags);
    return 0;
  }

  /** getxattr/listxattr: the size alone when asked with size 0, ERANGE when it does not fit. */
  private sized(value: Buffer, room: number): number {
    if (room === 0) {
      this.out.writeUInt32LE(value.length, O);
      this.out.writeUInt32LE(0, O + 4);
      return Size.GETXATTR_OUT;
    }
    if (value.length > room) throw new FsError("ERANGE", "getxattr");
    return value.copy(this.out, O);
  }

  /**
   * READDIR and READDIRPLUS of the directory after the request's offset (a cookie, see
   * src/union/listings.ts; no directory is open), as many entries as fit. Each
   * entry of a READDIRPLUS reply with a node id is a lookup the kernel will forget; `.` and
   * `..` go out with none, as the kernel ignores them there.
   */
  private readdir(plus: boolean): number {
    const r = this.req;
    const offset = readU64(r, H + 8);
    const room = Math.min(r.readUInt32LE(H + 16), this.out.length - O);
    const perEntry = plus ? Size.DIRENTPLUS - Size.DIRENT + 32 : 32;
    const node = this.node();
    const entries = this.fs.readdirAfter(node, offset, Math.max(1, Math.floor(room / perEntry)));
    const dir = plus ? node : null;
    let used = 0;
    for (const e of entries) {
      const size = direntSize(Buffer.byteLength(e.name, "latin1")) + (plus ? Size.ENTRY_OUT : 0);
      if (used + size > room) break;
      let at = O + used;
      if (dir !== null) {
        this.plusEntry(dir, e.name, at);
        at += Size.ENTRY_OUT;
      }
      writeDirent(this.out, at, e.ino, e.next, e.name, e.mode);
      used += size;
    }
    return used;
  }

  private plusEntry(dir: UnionNode, name: string, at: number): void {
    if (name === "." || name === "..") {
      writeEntry(this.out, at, 0n, null, 0);
      return;
    }
    const node = this.fs.lookup(dir, name);
    if (node === null) {
      writeEntry(this.out, at, 0n, null, 0);
      return;
    }
    try {
      writeEntry(this.out, at, node.id, this.fs.getattr(node), CACHE_VALID_S);
    } catch {
      this.fs.forget(node.id, 1);
      writeEntry(this.out, at, 0n, null, 0);
    }
  }
}

function timeAt(buf: Buffer, secAt: number, nsecAt: number): bigint {
  return buf.readBigInt64LE(secAt) * NS_PER_S + BigInt(buf.readUInt32LE(nsecAt));
}
