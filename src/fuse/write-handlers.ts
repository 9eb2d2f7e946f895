/**
 * Handlers for the requests that change the tree or a file. The caller's identity is read at
 * handler entry, before the first await: the binding sets it per request, synchronously.
 */
import { fdatasync, constants as fsc, fsync, write } from "node:fs";
import { promisify } from "node:util";
import { textToBytes } from "../path/name.js";
import type { UnionNode } from "../union/node-table.js";
import type { AttrChanges } from "../union/setattr-ops.js";
import type { TimeSpec } from "./native-mount.js";
import { type AdapterContext, type Reply, reply } from "./reply.js";

const done = () => [0];
/** libfuse 2.9's create carries no flags: it is open(O_CREAT | O_EXCL) for reading and writing */
const CREATE_FLAGS = fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR;
/** "leave unchanged" for chown's uid or gid, as (uid_t)-1 arrives */
const UNCHANGED_ID = 0xffffffff;
const NS_PER_MS = 1_000_000n;

/** The binding's utimens time as a setattr time; undefined leaves it as it is. */
function nsTime(t: TimeSpec): bigint | "now" | undefined {
  if (t === "omit") return undefined;
  return t === "now" ? "now" : BigInt(Math.round(t.ms)) * NS_PER_MS;
}

/** utimens's two times as setattr changes (an omitted one is absent). */
function timeChanges(atime: TimeSpec, mtime: TimeSpec): AttrChanges {
  const changes: AttrChanges = {};
  const [a, m] = [nsTime(atime), nsTime(mtime)];
  if (a !== undefined) changes.atime = a;
  if (m !== undefined) changes.mtime = m;
  return changes;
}
const writeAsync = promisify(write);
const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);

export function makeWriteOps(ctx: AdapterContext) {
  const { fs, nodes } = ctx;
  /** work on the directory holding `path` and the last component's name */
  const inParent =
    <T>(path: string, op: (parent: UnionNode, name: string) => T) =>
    () => {
      const { parent, name } = nodes.resolveParent(path);
      return op(parent, name);
    };
  return {
    create(path: string, mode: number, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.create(parent, name, mode, CREATE_FLAGS, caller).fh),
        (fh) => [0, fh],
      );
    },
    mknod(path: string, mode: number, rdev: number, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.mknod(parent, name, mode, rdev, caller)),
        done,
      );
    },
    mkdir(path: string, mode: number, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.mkdir(parent, name, mode, caller)),
        done,
      );
    },
    symlink(target: string, path: string, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.symlink(parent, name, textToBytes(target), caller)),
        done,
      );
    },
    link(source: string, path: string, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.link(nodes.resolve(source), parent, name, caller)),
        done,
      );
    },
    unlink(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.unlink(parent, name)),
        done,
      );
    },
    rmdir(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        inParent(path, (parent, name) => fs.rmdir(parent, name)),
        done,
      );
    },
    rename(source: string, dest: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => {
          const from = nodes.resolveParent(source);
          const to = nodes.resolveParent(dest);
          fs.rename(from.parent, from.name, to.parent, to.name);
        },
        done,
      );
    },
    write(_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Reply) {
      reply(
        ctx,
        cb,
        // on the thread pool, as reads are
        async () => (await writeAsync(fs.fd(fh, "write"), buf, 0, len, pos)).bytesWritten,
        (n) => [n],
      );
    },
    truncate(path: string, size: number, cb: Reply) {
      reply(ctx, cb, () => fs.setattr(nodes.resolve(path), { size }), done);
    },
    ftruncate(_path: string, fh: number, size: number, cb: Reply) {
      reply(ctx, cb, () => fs.setattr(fs.nodeOf(fh), { size }, fh), done);
    },
    fsync(_path: string, datasync: number, fh: number, cb: Reply) {
      reply(
        ctx,
        cb,
        async () => {
          const fd = fs.fd(fh, "fsync");
          if (fs.syncs) await (datasync !== 0 ? fdatasyncAsync(fd) : fsyncAsync(fd));
        },
        done,
      );
    },
    chmod(path: string, mode: number, cb: Reply) {
      reply(ctx, cb, () => fs.setattr(nodes.resolve(path), { mode }), done);
    },
    chown(path: string, uid: number, gid: number, cb: Reply) {
      const changes: AttrChanges = {};
      if (uid !== UNCHANGED_ID) changes.uid = uid;
      if (gid !== UNCHANGED_ID) changes.gid = gid;
      reply(ctx, cb, () => fs.setattr(nodes.resolve(path), changes), done);
    },
    utimens(path: string, atime: TimeSpec, mtime: TimeSpec, cb: Reply) {
      reply(ctx, cb, () => fs.setattr(nodes.resolve(path), timeChanges(atime, mtime)), done);
    },
    setxattr(path: string, name: string, value: Buffer, _position: number, flags: number, cb: Reply) {
      reply(ctx, cb, () => fs.setxattr(nodes.resolve(path), name, Buffer.from(value), flags), done);
    },
    removexattr(path: string, name: string, cb: Reply) {
      reply(ctx, cb, () => fs.removexattr(nodes.resolve(path), name), done);
    },
  };
}
