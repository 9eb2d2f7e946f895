/**
 * The fuse-native adapter: one handler per operation, each translating a path-based request
 * into node-based calls on the union and producing exactly one reply (see reply.ts).
 * Names and symlink targets go out as text (UTF-8), as the binding sends them; paths come in
 * as text and become bytes in path-nodes.ts, which says what cannot cross the binding.
 */
import { read } from "node:fs";
import { constants } from "node:os";
import { promisify } from "node:util";
import type { Logger } from "../errors.js";
import { bytesToText } from "../path/name.js";
import type { UnionFs } from "../union/union-fs.js";
import type { Caller } from "./native-mount.js";
import { PathNodes } from "./path-nodes.js";
import { type AdapterContext, type Reply, reply } from "./reply.js";
import { direntStat, toNativeStat, toNativeStatfs } from "./stat.js";
import { makeWriteOps } from "./write-handlers.js";

const ENODATA = -constants.errno.ENODATA;
const readAsync = promisify(read);

export function makeReadOps(ctx: AdapterContext) {
  const { fs, nodes } = ctx;
  return {
    getattr(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.getattr(nodes.resolve(path)),
        (a) => [0, toNativeStat(a)],
      );
    },
    fgetattr(_path: string, fh: number, cb: Reply) {
      // through the open file: its name may be gone (unlinked while open)
      reply(
        ctx,
        cb,
        () => fs.getattr(fs.nodeOf(fh), fh),
        (a) => [0, toNativeStat(a)],
      );
    },
    readdir(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.readdir(nodes.resolve(path)),
        (entries) => [0, entries.map((e) => bytesToText(e.name)), entries.map((e) => direntStat(e.ino, e.mode))],
      );
    },
    readlink(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.readlink(nodes.resolve(path)),
        (target) => [0, bytesToText(target)],
      );
    },
    open(path: string, flags: number, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.open(nodes.resolve(path), flags),
        (fh) => [0, fh],
      );
    },
    read(_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Reply) {
      // on the thread pool: a read that misses the page cache must not hold the event loop
      reply(
        ctx,
        cb,
        async () => (await readAsync(fs.fd(fh, "read"), buf, 0, len, pos)).bytesRead,
        (n) => [n],
      );
    },
    release(_path: string, fh: number, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.release(fh),
        () => [0],
      );
    },
    getxattr(path: string, name: string, _position: number, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.getxattr(nodes.resolve(path), name),
        (value) => (value === null ? [ENODATA] : [0, value]),
      );
    },
    listxattr(path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.listxattr(nodes.resolve(path)),
        (names) => [0, names],
      );
    },
    statfs(_path: string, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.statfs(),
        (st) => [0, toNativeStatfs(st)],
      );
    },
    access(path: string, mode: number, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.access(nodes.resolve(path), mode),
        () => [0],
      );
    },
  };
}

export function makeOps(fs: UnionFs, log: Logger, caller: () => Caller) {
  const ctx: AdapterContext = { fs, nodes: new PathNodes(fs), log, caller, stage: (node) => fs.stageCopyUp(node) };
  return { ...makeReadOps(ctx), ...makeWriteOps(ctx) };
}
