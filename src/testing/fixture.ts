/**
 * Declarative layer fixtures (after containerd/continuity's fstest):
 *
 *   apply(root, [file("a", "x", 0o644), dir("d"), symlink("l", "t"), whiteout("gone"),
 *                opaque("d2", "user"), xattr("a", "user.k", "v")]);
 *
 * Entries are data, so one logical layer can be written in several on-disk encodings:
 * `forKernel(entries, await kernelFeatures())` rewrites the whiteout and opaque encodings the
 * kernel does not read into ones it does: that is how differential tests build the oracle's
 * copy of a layer. `nativeCopy` does the same for a layer already on disk (testdata/sample).
 *
 * `apply` creates everything first and sets metadata afterwards, deepest paths first, so that
 * creating a child cannot disturb its parent's mtime. Every object it touches, including
 * implicitly created parents, meta entries and the layer root, gets a fixed mtime unless the
 * entry names one: two encodings of a layer then differ only where the encoding does.
 *
 * The file system calls are synchronous on purpose: no thread-pool hop per call for fixtures of
 * ten thousand entries, and nothing else runs while a fixture is built.
 */

import { execFileSync } from "node:child_process";
import {
  chmodSync as chmod,
  constants as fsc,
  lchownSync as lchown,
  linkSync as link,
  lstatSync as lstat,
  lutimesSync as lutimes,
  mkdirSync as mkdir,
  symlinkSync as mksymlink,
  readdirSync as readdir,
  unlinkSync as unlink,
  writeFileSync as writeFile,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { makedev, mknod } from "../sys/mknod.js";
import { lgetxattr, lsetxattr } from "../sys/xattr.js";

/** 2020-09-13T12:26:40Z: what every fixture object's mtime is unless the entry says otherwise. */
export const DEFAULT_MTIME = 1_600_000_000;

/**
 * chardev: overlayfs's 0/0 character device. wh-file: OCI/AUFS `.wh.NAME`. xattr / user-xattr:
 * an empty file with `trusted.` / `user.overlay.whiteout`, its parent marked `overlay.opaque=x`.
 */
export type WhiteoutFormat = "chardev" | "wh-file" | "xattr" | "user-xattr";
/** trusted / user: `overlay.opaque=y` in that namespace. wh-file: a `.wh..wh..opq` entry. */
export type OpaqueFormat = "trusted" | "user" | "wh-file";

export const WHITEOUT_FORMATS: readonly WhiteoutFormat[] = ["chardev", "wh-file", "xattr", "user-xattr"];
export const OPAQUE_FORMATS: readonly OpaqueFormat[] = ["trusted", "user", "wh-file"];

export interface Meta {
  /** permission bits (incl. setuid/setgid/sticky); not applied to symlinks */
  mode?: number;
  uid?: number;
  gid?: number;
  /** seconds since the epoch (fractions allowed) */
  mtime?: number;
  xattrs?: Record<string, string | Buffer>;
}

export type Entry =
  | { kind: "file"; path: string; content: string | Buffer; meta: Meta }
  | { kind: "dir"; path: string; meta: Meta }
  | { kind: "symlink"; path: string; target: string; meta: Meta }
  | { kind: "fifo"; path: string; meta: Meta }
  | { kind: "device"; path: string; type: "char" | "block"; major: number; minor: number; meta: Meta }
  | { kind: "link"; path: string; existing: string }
  | { kind: "whiteout"; path: string; format: WhiteoutFormat }
  | { kind: "opaque"; path: string; format: OpaqueFormat; meta: Meta }
  | { kind: "xattr"; path: string; name: string; value: string | Buffer };

const asMeta = (m: Meta | number | undefined): Meta => (typeof m === "number" ? { mode: m } : (m ?? {}));

export const file = (path: string, content: string | Buffer = "", meta?: Meta | number): Entry => ({
  kind: "file",
  path,
  content,
  meta: asMeta(meta),
});
export const dir = (path: string, meta?: Meta | number): Entry => ({ kind: "dir", path, meta: asMeta(meta) });
export const symlink = (path: string, target: string, meta?: Meta): Entry => ({
  kind: "symlink",
  path,
  target,
  meta: meta ?? {},
});
export const fifo = (path: string, meta?: Meta | number): Entry => ({ kind: "fifo", path, meta: asMeta(meta) });
export const device = (path: string, type: "char" | "block", major: number, minor: number, meta?: Meta): Entry => ({
  kind: "device",
  path,
  type,
  major,
  minor,
  meta: meta ?? {},
});
/** A hard link `path` to the already created `existing`. */
export const hardlink = (path: string, existing: string): Entry => ({ kind: "link", path, existing });
export const whiteout = (path: string, format: WhiteoutFormat = "chardev"): Entry => ({
  kind: "whiteout",
  path,
  format,
});
/** A directory (created if needed) that hides the layers below it. */
export const opaque = (path: string, format: OpaqueFormat = "trusted", meta?: Meta | number): Entry => ({
  kind: "opaque",
  path,
  format,
  meta: asMeta(meta),
});
export const xattr = (path: string, name: string, value: string | Buffer): Entry => ({
  kind: "xattr",
  path,
  name,
  value,
});

/** Does the running kernel read xattr whiteouts in lower layers? See kernelFeatures in mounts.ts. */
export interface KernelFormats {
  xattrWhiteouts: boolean;
}

/** The same logical layer in encodings kernel overlayfs (without `userxattr`) reads. */
export function forKernel(entries: readonly Entry[], kernel: KernelFormats): Entry[] {
  return entries.map((e) => {
    if (e.kind === "whiteout" && e.format !== "chardev" && !(e.format === "xattr" && kernel.xattrWhiteouts)) {
      return { ...e, format: "chardev" };
    }
    if (e.kind === "opaque" && e.format !== "trusted") return { ...e, format: "trusted" };
    return e;
  });
}

interface Pending {
  path: string;
  meta: Meta;
  isLink: boolean;
}

/** Writes `entries` below `root` (created if missing); see the module header for the order. */
export function apply(root: string, entries: readonly Entry[]): void {
  mkdir(root, { recursive: true });
  const pending = new Map<string, Pending>();
  const touch = (rel: string, meta: Meta = {}, isLink = false) => {
    const old = pending.get(rel);
    pending.set(rel, { path: rel, meta: { ...old?.meta, ...meta }, isLink: old?.isLink ?? isLink });
  };
  touch("", { mode: 0o755 });
  const parents = (rel: string) => {
    const parts = rel.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (pending.has(p)) continue;
      mkdir(join(root, p), { recursive: true });
      touch(p, { mode: 0o755 });
    }
  };
  for (const e of entries) {
    const rel = e.path === "." ? "" : e.path;
    const abs = join(root, rel);
    if (rel !== "") parents(rel);
    create(root, rel, abs, e, touch);
  }
  const order = [...pending.values()].sort((a, b) => depth(b.path) - depth(a.path) || (a.path < b.path ? -1 : 1));
  for (const p of order) setMeta(join(root, p.path), p.meta, p.isLink);
}

type Touch = (rel: string, meta?: Meta, isLink?: boolean) => void;

function create(root: string, rel: string, abs: string, e: Entry, touch: Touch): void {
  switch (e.kind) {
    case "file":
      writeFile(abs, e.content, { flag: "wx", mode: 0o644 });
      touch(rel, { mode: 0o644, ...e.meta });
      break;
    case "dir":
      mkdir(abs, { recursive: true });
      touch(rel, { mode: 0o755, ...e.meta });
      break;
    case "symlink":
      mksymlink(e.target, abs);
      touch(rel, e.meta, true);
      break;
    case "fifo":
      mknod(abs, fsc.S_IFIFO | 0o644, 0);
      touch(rel, { mode: 0o644, ...e.meta });
      break;
    case "device":
      mknod(abs, (e.type === "char" ? fsc.S_IFCHR : fsc.S_IFBLK) | 0o600, makedev(e.major, e.minor));
      touch(rel, { mode: 0o600, ...e.meta });
      break;
    case "link":
      link(join(root, e.existing), abs);
      break;
    case "whiteout":
      createWhiteout(rel, abs, e.format, touch);
      break;
    case "opaque":
      mkdir(abs, { recursive: true });
      touch(rel, { mode: 0o755, ...e.meta });
      if (e.format === "wh-file") {
        writeFile(join(abs, ".wh..wh..opq"), "", { flag: "wx", mode: 0o644 });
        touch(join(rel, ".wh..wh..opq"), { mode: 0o644 });
      } else {
        lsetxattr(abs, `${e.format}.overlay.opaque`, Buffer.from("y"));
      }
      break;
    case "xattr":
      lsetxattr(abs, e.name, Buffer.from(e.value));
      break;
  }
}

function createWhiteout(rel: string, abs: string, format: WhiteoutFormat, touch: Touch): void {
  const parentRel = dirname(rel) === "." ? "" : dirname(rel);
  const parentAbs = dirname(abs);
  const name = basename(rel);
  if (format === "chardev") {
    mknod(abs, fsc.S_IFCHR, makedev(0, 0));
    touch(rel, {});
    return;
  }
  if (format === "wh-file") {
    writeFile(join(parentAbs, `.wh.${name}`), "", { flag: "wx", mode: 0o644 });
    touch(join(parentRel, `.wh.${name}`), { mode: 0o644 });
    return;
  }
  const ns = format === "xattr" ? "trusted" : "user";
  writeFile(abs, "", { flag: "wx", mode: 0o644 });
  lsetxattr(abs, `${ns}.overlay.whiteout`, Buffer.from("y"));
  touch(rel, { mode: 0o644 });
  // The parent must say it holds xattr whiteouts; an opaque parent needs no whiteouts at all.
  const marker = lgetxattr(parentAbs, `${ns}.overlay.opaque`)?.toString();
  if (marker === "y") throw new Error(`fixture: xattr whiteout ${rel} inside an opaque directory`);
  lsetxattr(parentAbs, `${ns}.overlay.opaque`, Buffer.from("x"));
}

function setMeta(abs: string, meta: Meta, isLink: boolean): void {
  if (meta.uid !== undefined || meta.gid !== undefined) {
    const st = lstat(abs);
    lchown(abs, meta.uid ?? st.uid, meta.gid ?? st.gid);
  }
  if (meta.mode !== undefined && !isLink) chmod(abs, meta.mode);
  for (const [name, value] of Object.entries(meta.xattrs ?? {})) lsetxattr(abs, name, Buffer.from(value));
  const mtime = meta.mtime ?? DEFAULT_MTIME;
  lutimes(abs, mtime, mtime);
}

function depth(rel: string): number {
  return rel === "" ? 0 : rel.split("/").length;
}

/**
 * Copies a layer written in OCI encodings (`.wh.NAME` files, `.wh..wh..opq` markers) to `dest`
 * (which must not exist) in the encodings the kernel reads (char 0/0, trusted.overlay.opaque=y),
 * keeping modes, owners, xattrs and mtimes. Returns `dest`.
 */
export function nativeCopy(src: string, dest: string): string {
  execFileSync("cp", ["-a", "--", src, dest]);
  const convert = (rel: string) => {
    const here = join(dest, rel);
    let changed = false;
    for (const name of readdir(here)) {
      const path = join(here, name);
      if (name === ".wh..wh..opq") {
        unlink(path);
        lsetxattr(here, "trusted.overlay.opaque", Buffer.from("y"));
        changed = true;
      } else if (name.startsWith(".wh.")) {
        unlink(path);
        mknod(join(here, name.slice(4)), fsc.S_IFCHR, makedev(0, 0));
        changed = true;
      } else if (lstat(path).isDirectory()) {
        convert(join(rel, name));
      }
    }
    // touch -r copies the times to the nanosecond (utimes from JS numbers would round them)
    if (changed) execFileSync("touch", ["-h", "-r", join(src, rel), here]);
  };
  convert("");
  return dest;
}
