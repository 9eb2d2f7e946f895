/**
 * Handlers for the requests that change the tree or a file. The caller's identity is read at
 * handler entry, before the first await: the binding sets it per request, synchronously.
 */
import type { UnionNode } from "../union/node-table.js";
import type { TimeSpec } from "../union/setattr-ops.js";
import { type AdapterContext, type Reply, reply } from "./reply.js";

const done = () => [0];

export function makeWriteOps(ctx: AdapterContext) {
  const { fs, nodes } = ctx;
  /** work on the directory holding `path` and the last component's name */
  const inParent =
    <T>(path: string, op: (parent: UnionNode, name: string) => Promise<T>) =>
    async () => {
      const { parent, name } = await nodes.resolveParent(path);
      return op(parent, name);
    };
  return {
    create(path: string, mode: number, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, async (parent, name) => (await fs.create(parent, name, mode, caller)).fh),
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
        inParent(path, (parent, name) => fs.symlink(parent, name, target, caller)),
        done,
      );
    },
    link(source: string, path: string, cb: Reply) {
      const caller = ctx.caller();
      reply(
        ctx,
        cb,
        inParent(path, async (parent, name) => fs.link(await nodes.resolve(source), parent, name, caller)),
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
        async () => {
          const from = await nodes.resolveParent(source);
          const to = await nodes.resolveParent(dest);
          await fs.rename(from.parent, from.name, to.parent, to.name);
        },
        done,
      );
    },
    write(_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Reply) {
      reply(
        ctx,
        cb,
        () => fs.write(fh, buf, len, pos),
        (n) => [n],
      );
    },
    truncate(path: string, size: number, cb: Reply) {
      reply(ctx, cb, async () => fs.truncate(await nodes.resolve(path), size), done);
    },
    ftruncate(_path: string, fh: number, size: number, cb: Reply) {
      reply(ctx, cb, () => fs.ftruncate(fh, size), done);
    },
    fsync(_path: string, datasync: number, fh: number, cb: Reply) {
      reply(ctx, cb, () => fs.fsync(fh, datasync !== 0), done);
    },
    chmod(path: string, mode: number, cb: Reply) {
      reply(ctx, cb, async () => fs.chmod(await nodes.resolve(path), mode), done);
    },
    chown(path: string, uid: number, gid: number, cb: Reply) {
      reply(ctx, cb, async () => fs.chown(await nodes.resolve(path), uid, gid), done);
    },
    utimens(path: string, atime: TimeSpec, mtime: TimeSpec, cb: Reply) {
      reply(ctx, cb, async () => fs.utimens(await nodes.resolve(path), atime, mtime), done);
    },
    setxattr(path: string, name: string, value: Buffer, _position: number, flags: number, cb: Reply) {
      reply(ctx, cb, async () => fs.setxattr(await nodes.resolve(path), name, Buffer.from(value), flags), done);
    },
    removexattr(path: string, name: string, cb: Reply) {
      reply(ctx, cb, async () => fs.removexattr(await nodes.resolve(path), name), done);
    },
  };
}
