import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsError } from "../errors.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { MNT_DETACH, mount, umount2 } from "./mount.js";
import {
  fgetxattr,
  flistxattr,
  fsetxattr,
  lgetxattr,
  lgetxattrAsync,
  llistxattr,
  llistxattrAsync,
  lremovexattr,
  lsetxattr,
  XATTR_CREATE,
  XATTR_REPLACE,
} from "./xattr.js";

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-xattr-"));
  file = join(dir, "f");
  writeFileSync(file, "x");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FsError);
    return (e as FsError).code;
  }
  return undefined;
}

describe("sync xattrs", () => {
  it("sets, gets, lists and removes", () => {
    lsetxattr(file, "user.a", Buffer.from("hello"));
    lsetxattr(file, "user.empty", Buffer.alloc(0));
    expect(lgetxattr(file, "user.a")?.toString()).toBe("hello");
    expect(lgetxattr(file, "user.empty")?.length).toBe(0);
    expect(llistxattr(file).sort()).toEqual(expect.arrayContaining(["user.a", "user.empty"]));
    lremovexattr(file, "user.a");
    expect(lgetxattr(file, "user.a")).toBeNull();
  });

  it("returns null for a missing attribute and throws ENOENT for a missing file", () => {
    expect(lgetxattr(file, "user.nope")).toBeNull();
    expect(codeOf(() => lgetxattr(join(dir, "missing"), "user.a"))).toBe("ENOENT");
    expect(codeOf(() => llistxattr(join(dir, "missing")))).toBe("ENOENT");
    expect(codeOf(() => lremovexattr(file, "user.nope"))).toBe("ENODATA");
  });

  it("honours XATTR_CREATE and XATTR_REPLACE", () => {
    expect(codeOf(() => lsetxattr(file, "user.r", Buffer.from("1"), XATTR_REPLACE))).toBe("ENODATA");
    lsetxattr(file, "user.r", Buffer.from("1"), XATTR_CREATE);
    expect(codeOf(() => lsetxattr(file, "user.r", Buffer.from("2"), XATTR_CREATE))).toBe("EEXIST");
    lsetxattr(file, "user.r", Buffer.from("2"), XATTR_REPLACE);
    expect(lgetxattr(file, "user.r")?.toString()).toBe("2");
  });

  it("treats a filesystem without xattrs as having none", () => {
    expect(lgetxattr("/proc/self/status", "user.a")).toBeNull();
    expect(llistxattr("/proc/self/status")).toEqual([]);
  });

  it("does not follow a final symlink", () => {
    lsetxattr(file, "user.a", Buffer.from("on-target"));
    const link = join(dir, "l");
    symlinkSync("f", link);
    expect(lgetxattr(link, "user.a")).toBeNull();
  });

  it("accepts byte paths and rejects embedded NULs", () => {
    lsetxattr(Buffer.from(file), "user.b", Buffer.from("bytes"));
    expect(lgetxattr(Buffer.from(file), "user.b")?.toString()).toBe("bytes");
    expect(codeOf(() => lgetxattr(`${file}\0x`, "user.b"))).toBe("EINVAL");
  });

  it("works on file descriptors", () => {
    const fd = openSync(file, "r+");
    try {
      fsetxattr(fd, "user.fd", Buffer.from("via-fd"));
      expect(fgetxattr(fd, "user.fd")?.toString()).toBe("via-fd");
      expect(fgetxattr(fd, "user.none")).toBeNull();
      expect(flistxattr(fd)).toContain("user.fd");
    } finally {
      closeSync(fd);
    }
    expect(codeOf(() => fgetxattr(fd, "user.fd"))).toBe("EBADF");
  });
});

describe("async xattr reads", () => {
  it("mirror the sync semantics", async () => {
    lsetxattr(file, "user.a", Buffer.from("async"));
    expect((await lgetxattrAsync(file, "user.a"))?.toString()).toBe("async");
    expect(await lgetxattrAsync(file, "user.nope")).toBeNull();
    expect(await llistxattrAsync(file)).toContain("user.a");
    lremovexattr(file, "user.a");
    expect(await lgetxattrAsync(file, "user.a")).toBeNull();
  });

  it("recover the errno of a failed call", async () => {
    const missing = join(dir, "missing");
    await expect(lgetxattrAsync(missing, "user.a")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(llistxattrAsync(missing)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

// ext4 keeps all of an inode's xattrs in one block (ENOSPC past ~4 KiB), so values and lists
// bigger than the first 4 KiB buffer are tested on a tmpfs of our own, which needs root.
describeAsRoot("large xattrs (tmpfs, root)", () => {
  let mnt: string | undefined;
  let big: Buffer;
  beforeEach(() => {
    const target = join(dir, "mnt");
    mkdirSync(target);
    mount("unionfs-xattr-test", target, "tmpfs", 0, "size=4m");
    mnt = target;
    file = join(target, "f");
    writeFileSync(file, "x");
    big = Buffer.alloc(20_000, 7);
    big.write("head");
  });
  afterEach(() => {
    if (mnt !== undefined) umount2(mnt, MNT_DETACH);
    mnt = undefined;
  });

  it("reads values larger than the first buffer", () => {
    lsetxattr(file, "trusted.big", big);
    expect(lgetxattr(file, "trusted.big")?.equals(big)).toBe(true);
    const fd = openSync(file, "r");
    try {
      expect(fgetxattr(fd, "trusted.big")?.equals(big)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it("lists names past the first buffer", () => {
    const names = Array.from({ length: 60 }, (_, i) => `trusted.${"n".repeat(100)}${i}`);
    for (const n of names) lsetxattr(file, n, Buffer.from("v"));
    expect(llistxattr(file).sort()).toEqual([...names].sort());
  });

  it("reads large values asynchronously through many overlapping calls", async () => {
    lsetxattr(file, "trusted.big", big);
    const names = Array.from({ length: 60 }, (_, i) => `trusted.${"n".repeat(100)}${i}`);
    for (const n of names) lsetxattr(file, n, Buffer.from("v"));
    const results = await Promise.all(Array.from({ length: 400 }, () => lgetxattrAsync(file, "trusted.big")));
    for (const r of results) expect(r?.equals(big)).toBe(true);
    expect((await llistxattrAsync(file)).length).toBe(61);
  });
});
