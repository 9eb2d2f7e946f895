import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { major, minor } from "../sys/mknod.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { StoreError } from "./store-error.js";
import { type UnpackOptions, unpackLayer } from "./unpack.js";

const isRoot = process.getuid?.() === 0;
const MTIME = new Date("2021-02-03T04:05:06Z");
const MTIME_S = MTIME.getTime() / 1000;

let base: string;
/** The directory `dest` lives in: it must hold nothing but `layer` after any unpack. */
let parent: string;
let dest: string;
/** A directory beside the store that hostile archives try to reach. */
let outside: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "unionfs-unpack-"));
  parent = join(base, "store");
  outside = join(base, "outside");
  mkdirSync(parent);
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "keep me");
  dest = join(parent, "layer");
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

// ---- building archives in memory -----------------------------------------------------------

type Spec = Parameters<ReturnType<typeof tar.pack>["entry"]>[0] & { data?: string | Buffer };

const file = (name: string, data: string | Buffer = "", extra: Partial<Spec> = {}): Spec => ({
  name,
  type: "file",
  mode: 0o644,
  mtime: MTIME,
  data,
  ...extra,
});
const dir = (name: string, extra: Partial<Spec> = {}): Spec => ({
  name,
  type: "directory",
  mode: 0o755,
  mtime: MTIME,
  ...extra,
});
const symlink = (name: string, target: string, extra: Partial<Spec> = {}): Spec => ({
  name,
  type: "symlink",
  linkname: target,
  mtime: MTIME,
  ...extra,
});
const hardlink = (name: string, target: string): Spec => ({ name, type: "link", linkname: target, mtime: MTIME });

async function packTar(specs: Spec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const { data, ...header } of specs) pack.entry(header, data ?? "");
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A ustar header block written by hand, for what tar-stream's packer refuses to write. */
function ustar(h: { name: string; typeflag: string; size?: number; mode?: number; linkname?: string }): Buffer {
  const b = Buffer.alloc(512);
  const oct = (off: number, len: number, v: number) =>
    b.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, "latin1");
  b.write(h.name, 0, 100, "utf8");
  oct(100, 8, h.mode ?? 0o644);
  oct(108, 8, 0);
  oct(116, 8, 0);
  oct(124, 12, h.size ?? 0);
  oct(136, 12, MTIME_S);
  b.fill(0x20, 148, 156);
  b.write(h.typeflag, 156, "latin1");
  if (h.linkname !== undefined) b.write(h.linkname, 157, 100, "utf8");
  b.write("ustar\0", 257, "latin1");
  b.write("00", 263, "latin1");
  const sum = b.reduce((a, x) => a + x, 0);
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return b;
}

function pad(data: Buffer): Buffer {
  const rem = data.length % 512;
  return rem === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rem)]);
}

/** PAX records with raw byte values: "<len> <key>=<value>\n". */
function paxRecords(records: [string, string | Buffer][]): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from("\n")]);
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len = String(len).length + body.length;
      return Buffer.concat([Buffer.from(String(len)), body]);
    }),
  );
}

function rawTar(blocks: { header: Buffer; data?: Buffer }[], end = true): Buffer {
  const parts = blocks.flatMap(({ header, data }) => (data === undefined ? [header] : [header, pad(data)]));
  return Buffer.concat(end ? [...parts, Buffer.alloc(1024)] : parts);
}

function zstd(data: Buffer): Buffer {
  const r = spawnSync("zstd", ["-q", "-c"], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function* chunked(data: Buffer, size = 4096): Generator<Buffer> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size);
}

function unpack(data: Buffer, opts: Partial<UnpackOptions> = {}) {
  return unpackLayer(Readable.from(chunked(data)), dest, { whiteout: "chardev", ...opts });
}

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const xattr = (path: string, name: string) => lgetxattr(path, name)?.toString("latin1") ?? null;

/** The archive is refused with `kind` and a message naming `words`; nothing is left behind. */
async function expectRefused(data: Buffer, kind: StoreError["kind"], ...words: string[]): Promise<StoreError> {
  const err = await unpack(data).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  const e = err as StoreError;
  expect(e.kind).toBe(kind);
  for (const w of words) expect(e.message).toContain(w);
  expect(readdirSync(parent)).toEqual([]);
  expect(readdirSync(outside)).toEqual(["secret"]);
  expect(readFileSync(join(outside, "secret"), "utf8")).toBe("keep me");
  return e;
}

// ---- the happy path ------------------------------------------------------------------------

describeAsRoot("unpackLayer: every entry type (root)", () => {
  async function everyType(): Promise<Buffer> {
    return packTar([
      dir("./", { mode: 0o755 }),
      // children before their directory entry: its attributes still apply
      file("late/child", "c"),
      dir("late/", { mode: 0o750, uid: 7, gid: 8 }),
      dir("etc/"),
      file("etc/passwd", "root:x:0:0\n", {
        mode: 0o4755,
        uid: 1000,
        gid: 1001,
        pax: { "SCHILY.xattr.user.note": "hello", "SCHILY.xattr.trusted.t": "v" },
      }),
      file("etc/group", "g", { mode: 0o2711 }),
      // PAX overrides: an owner beyond ustar's 7 octal digits, a sub-second mtime
      file("etc/mapped", "m", { pax: { uid: "3000000", gid: "3000001", mtime: `${MTIME_S}.5` } }),
      dir("tmp/", { mode: 0o1777 }),
      symlink("link", "etc/passwd", { uid: 5, gid: 6 }),
      hardlink("hard", "etc/passwd"),
      { name: "fifo", type: "fifo", mode: 0o640, mtime: MTIME },
      { name: "dev/null", type: "character-device", mode: 0o666, devmajor: 1, devminor: 3, mtime: MTIME },
      { name: "dev/sda", type: "block-device", mode: 0o660, devmajor: 8, devminor: 0, mtime: MTIME },
      file("etc/.wh.shadow"),
      dir("opq/"),
      file("opq/.wh..wh..opq"),
      file("opq/kept", "k"),
    ]);
  }

  it("keeps types, owners, modes with setuid/setgid/sticky, mtimes, xattrs and links", async () => {
    const data = await everyType();
    const result = await unpack(data);
    expect(result).toEqual({ diffId: sha256(data), size: data.length });
    expect(readdirSync(parent)).toEqual(["layer"]);

    const st = (p: string) => lstatSync(join(dest, p));
    expect(st("").mode & 0o7777).toBe(0o755);
    expect(st("").mtimeMs).toBe(MTIME.getTime());

    const passwd = st("etc/passwd");
    expect(passwd.isFile()).toBe(true);
    expect(passwd.mode & 0o7777).toBe(0o4755);
    expect([passwd.uid, passwd.gid]).toEqual([1000, 1001]);
    expect(passwd.mtimeMs).toBe(MTIME.getTime());
    expect(readFileSync(join(dest, "etc/passwd"), "utf8")).toBe("root:x:0:0\n");
    expect(xattr(join(dest, "etc/passwd"), "user.note")).toBe("hello");
    expect(xattr(join(dest, "etc/passwd"), "trusted.t")).toBe("v");
    expect(st("etc/group").mode & 0o7777).toBe(0o2711);
    const mapped = st("etc/mapped");
    expect([mapped.uid, mapped.gid, mapped.mtimeMs]).toEqual([3000000, 3000001, MTIME.getTime() + 500]);
    expect(st("tmp").mode & 0o7777).toBe(0o1777);

    const late = st("late");
    expect([late.mode & 0o7777, late.uid, late.gid, late.mtimeMs]).toEqual([0o750, 7, 8, MTIME.getTime()]);
    expect(st("etc").mtimeMs).toBe(MTIME.getTime()); // set after its children were written

    const link = st("link");
    expect(link.isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dest, "link"))).toBe("etc/passwd");
    expect([link.uid, link.gid, link.mtimeMs]).toEqual([5, 6, MTIME.getTime()]);

    expect(st("hard").ino).toBe(passwd.ino);
    expect(st("hard").nlink).toBe(2);

    expect(st("fifo").isFIFO()).toBe(true);
    expect(st("fifo").mode & 0o7777).toBe(0o640);
    const nul = st("dev/null");
    expect(nul.isCharacterDevice()).toBe(true);
    expect([major(nul.rdev), minor(nul.rdev), nul.mode & 0o7777]).toEqual([1, 3, 0o666]);
    const sda = st("dev/sda");
    expect(sda.isBlockDevice()).toBe(true);
    expect([major(sda.rdev), minor(sda.rdev)]).toEqual([8, 0]);
    expect(st("dev").mode & 0o7777).toBe(0o755); // made implicitly

    const shadow = st("etc/shadow");
    expect(shadow.isCharacterDevice()).toBe(true);
    expect(shadow.rdev).toBe(0);
    expect(existsSync(join(dest, "etc/.wh.shadow"))).toBe(false);

    expect(xattr(join(dest, "opq"), "trusted.overlay.opaque")).toBe("y");
    expect(readdirSync(join(dest, "opq"))).toEqual(["kept"]);
    expect(xattr(join(dest, "etc"), "trusted.overlay.opaque")).toBeNull();
  });

  it("file style: keeps .wh. files and marks opaque dirs with user.overlay.opaque", async () => {
    await unpack(await everyType(), { whiteout: "file" });
    const wh = lstatSync(join(dest, "etc/.wh.shadow"));
    expect(wh.isFile()).toBe(true);
    expect(wh.size).toBe(0);
    expect(existsSync(join(dest, "etc/shadow"))).toBe(false);
    expect(xattr(join(dest, "opq"), "user.overlay.opaque")).toBe("y");
    expect(xattr(join(dest, "opq"), "trusted.overlay.opaque")).toBeNull();
    expect(readdirSync(join(dest, "opq"))).toEqual(["kept"]);
  });

  it("writes binary xattr values byte for byte (security.capability with cap_setuid)", async () => {
    // VFS_CAP_REVISION_2 | effective, permitted = 1 << 7 (cap_setuid): 0x80 is not UTF-8 alone.
    const cap = Buffer.from([1, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const bin = Buffer.from([0x00, 0xff, 0x80, 0x7f, 0xc3]);
    const pax = paxRecords([
      ["SCHILY.xattr.security.capability", cap],
      ["SCHILY.xattr.user.bin", bin],
    ]);
    const data = rawTar([
      { header: ustar({ name: "PaxHeader", typeflag: "x", size: pax.length }), data: pax },
      { header: ustar({ name: "newuidmap", typeflag: "0", size: 2, mode: 0o755 }), data: Buffer.from("#!") },
    ]);
    await unpack(data);
    expect(lgetxattr(join(dest, "newuidmap"), "security.capability")).toEqual(cap);
    expect(lgetxattr(join(dest, "newuidmap"), "user.bin")).toEqual(bin);
  });
});

describe("unpackLayer: whiteouts apply only to lower layers", () => {
  it.skipIf(!isRoot)("a .wh.x before an x of the same layer never removes that x", async () => {
    await unpack(await packTar([file(".wh.x"), file("x", "new")]));
    expect(lstatSync(join(dest, "x")).isFile()).toBe(true);
    expect(readFileSync(join(dest, "x"), "utf8")).toBe("new");
    expect(readdirSync(dest)).toEqual(["x"]);
  });

  it.skipIf(!isRoot)("a .wh.d next to a directory d of the same layer makes d opaque", async () => {
    await unpack(await packTar([dir("d/"), file("d/f", "1"), file(".wh.d")]));
    expect(xattr(join(dest, "d"), "trusted.overlay.opaque")).toBe("y");
    expect(readdirSync(join(dest, "d"))).toEqual(["f"]);
  });

  it("file style: the same conflict keeps x and writes no .wh.x", async () => {
    await unpack(await packTar([file("x", "new"), file(".wh.x")]), { whiteout: "file" });
    expect(readdirSync(dest)).toEqual(["x"]);
  });

  it("an opaque marker after its siblings still marks the directory (image-spec example)", async () => {
    await unpack(await packTar([dir("a/"), dir("a/b/"), dir("a/b/c/"), file("a/b/c/foo"), file("a/.wh..wh..opq")]), {
      whiteout: "file",
    });
    expect(xattr(join(dest, "a"), "user.overlay.opaque")).toBe("y");
    expect(readdirSync(join(dest, "a/b/c"))).toEqual(["foo"]);
  });

  it("skips other .wh..wh. bookkeeping entries (AUFS .wh..wh.plnk)", async () => {
    await unpack(await packTar([file(".wh..wh.plnk"), file("a")]), { whiteout: "file" });
    expect(readdirSync(dest)).toEqual(["a"]);
  });

  it("a directory repeated as a directory takes the later entry's attributes", async () => {
    await unpack(await packTar([dir("d/", { mode: 0o700 }), file("d/f"), dir("d/", { mode: 0o711 })]), {
      whiteout: "file",
    });
    expect(statSync(join(dest, "d")).mode & 0o777).toBe(0o711);
  });
});

// ---- digest, progress, compression, size ---------------------------------------------------

describe("unpackLayer: digest and streams", () => {
  const simple = () => packTar([dir("d/"), file("d/a", "alpha"), file("b", Buffer.alloc(70_000, 7))]);

  it("returns the sha256 of the uncompressed tar and its size, and verifies expectedDiffId", async () => {
    const data = await simple();
    const result = await unpack(data, { whiteout: "file", expectedDiffId: sha256(data) });
    expect(result).toEqual({ diffId: sha256(data), size: data.length });
  });

  it("reports progress in uncompressed bytes, ending at the size", async () => {
    const data = await simple();
    const seen: number[] = [];
    await unpack(gzipSync(data), { whiteout: "file", onProgress: (n) => seen.push(n) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(data.length);
  });

  it("unpacks a gzip layer; the DiffID is the digest of the uncompressed tar", async () => {
    const data = await simple();
    const result = await unpack(gzipSync(data), { whiteout: "file", expectedDiffId: sha256(data) });
    expect(result.diffId).toBe(sha256(data));
    expect(readFileSync(join(dest, "d/a"), "utf8")).toBe("alpha");
  });

  it("unpacks a zstd layer through the zstd program", async () => {
    const data = await simple();
    const result = await unpack(zstd(data), { whiteout: "file", expectedDiffId: sha256(data) });
    expect(result).toEqual({ diffId: sha256(data), size: data.length });
    expect(readFileSync(join(dest, "b")).equals(Buffer.alloc(70_000, 7))).toBe(true);
  });

  it("streams a 50 MB file without holding the archive in memory", async () => {
    const size = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const pack = tar.pack();
    const hash = createHash("sha256");
    const tee = Readable.from(
      (async function* () {
        for await (const c of pack) {
          hash.update(c as Buffer);
          yield c as Buffer;
        }
      })(),
    );
    const writing = (async () => {
      const sink = pack.entry({ name: "big", type: "file", size, mode: 0o644, mtime: MTIME });
      for (let i = 0; i < size / chunk.length; i++) {
        if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once("drain", () => resolve()));
      }
      sink.end(undefined);
      pack.finalize();
    })();
    const [result] = await Promise.all([unpackLayer(tee, dest, { whiteout: "file" }), writing]);
    expect(statSync(join(dest, "big")).size).toBe(size);
    expect(result.diffId).toBe(`sha256:${hash.digest("hex")}`);
    expect(result.size).toBe(size + 512 + 1024);
  }, 120_000);
});

// ---- hostile and broken input --------------------------------------------------------------

describe("unpackLayer refuses hostile archives and leaves nothing behind", () => {
  it("refuses an absolute path", async () => {
    await expectRefused(await packTar([file("/etc/passwd", "x")]), "hostile-entry", "/etc/passwd", "absolute");
  });

  it("refuses '..' components, even ones that would stay inside", async () => {
    await expectRefused(await packTar([file("a/../../x", "x")]), "hostile-entry", "a/../../x", "'..'");
    await expectRefused(await packTar([dir("a/"), file("a/../b", "x")]), "hostile-entry", "a/../b");
  });

  it("refuses an entry written through a symlink in the same layer", async () => {
    const data = await packTar([symlink("evil", outside), file("evil/pwned", "x")]);
    await expectRefused(data, "hostile-entry", "evil/pwned", "symlink");
  });

  it("refuses an entry written through a symlink to '..'", async () => {
    await expectRefused(await packTar([symlink("up", ".."), file("up/x", "x")]), "hostile-entry", "up/x", "symlink");
  });

  it("refuses a directory made through a symlink and a whiteout placed through one", async () => {
    await expectRefused(await packTar([symlink("evil", outside), dir("evil/d/")]), "hostile-entry", "evil/d/");
    await expectRefused(await packTar([symlink("evil", outside), file("evil/.wh.secret")]), "hostile-entry", "symlink");
  });

  it("refuses hard links that leave the layer", async () => {
    const secret = join(outside, "secret");
    await expectRefused(await packTar([hardlink("h", secret)]), "hostile-entry", "h", "absolute");
    await expectRefused(await packTar([hardlink("h", "../outside/secret")]), "hostile-entry", "'..'");
  });

  it("refuses a hard link to a missing entry or to an entry that comes later", async () => {
    await expectRefused(await packTar([hardlink("h", "nope")]), "hostile-entry", "'h'", "not an earlier entry");
    await expectRefused(await packTar([hardlink("h", "later"), file("later", "x")]), "hostile-entry", "not an earlier");
  });

  it("refuses a hard link through a symlink of the same layer", async () => {
    const data = await packTar([symlink("s", outside), hardlink("h", "s/secret")]);
    await expectRefused(data, "hostile-entry", "not an earlier entry");
  });

  it("refuses a hard link to a directory", async () => {
    await expectRefused(await packTar([dir("d/"), hardlink("h", "d")]), "hostile-entry", "is a directory");
  });

  it("refuses a layer whose digest does not match expectedDiffId", async () => {
    const data = await packTar([file("a", "x")]);
    const wrong = sha256(Buffer.from("something else"));
    const err = await unpack(data, { expectedDiffId: wrong }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "digest-mismatch" });
    expect((err as Error).message).toContain(wrong);
    expect((err as Error).message).toContain(sha256(data));
    expect(readdirSync(parent)).toEqual([]);
  });

  it("refuses a tar that ends inside an entry's data, naming the entry", async () => {
    const data = await packTar([file("a", "x"), file("big", Buffer.alloc(5000, 1))]);
    await expectRefused(data.subarray(0, 512 * 4), "corrupt", "truncated", "big");
  });

  it("refuses a tar cut at an entry boundary (no end-of-archive marker)", async () => {
    const data = await packTar([file("a", "x"), file("b", "y")]);
    await expectRefused(data.subarray(0, 1024), "corrupt", "end-of-archive");
  });

  it("refuses an empty stream and a stream that is not a tar", async () => {
    await expectRefused(Buffer.alloc(0), "corrupt", "end-of-archive");
    await expectRefused(Buffer.alloc(2048, 0x41), "corrupt", "corrupt tar stream");
  });

  it("refuses a corrupt gzip stream", async () => {
    const gz = gzipSync(await packTar([file("a", Buffer.alloc(20_000, 3))]));
    const bad = Buffer.from(gz);
    bad.fill(0xee, 20, 40);
    await expectRefused(bad, "corrupt", "corrupt gzip stream");
  });

  it("refuses a truncated gzip stream", async () => {
    const gz = gzipSync(await packTar([file("a", Buffer.alloc(20_000, 3))]));
    await expectRefused(gz.subarray(0, gz.length - 10), "corrupt", "corrupt gzip stream: unexpected end of file");
  });

  it("refuses a truncated zstd stream", async () => {
    const zs = zstd(await packTar([file("a", Buffer.alloc(200_000, 3)), file("b", Buffer.alloc(200_000, 9))]));
    await expectRefused(zs.subarray(0, Math.floor(zs.length / 2)), "corrupt", "corrupt zstd stream");
  });

  it("stops reading and kills zstd as soon as a hostile entry shows up", async () => {
    const data = await packTar([file("/abs", "x"), file("big", Buffer.alloc(64 * 1024 * 1024, 1))]);
    await expectRefused(zstd(data), "hostile-entry", "absolute");
    // the kill is sent before the refusal; the child's exit may lag it on a busy machine
    const zstdChildren = () => spawnSync("pgrep", ["-P", String(process.pid), "zstd"], { encoding: "utf8" }).stdout;
    for (let i = 0; i < 200 && zstdChildren() !== ""; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(zstdChildren()).toBe("");
  });

  it("refuses a second entry for the same path", async () => {
    await expectRefused(await packTar([file("a", "1"), file("a", "2")]), "hostile-entry", "'a'", "duplicate");
    await expectRefused(await packTar([file("d", "1"), dir("d/")]), "hostile-entry", "duplicate");
    await expectRefused(await packTar([dir("d/"), symlink("d", outside)]), "hostile-entry", "duplicate");
    await expectRefused(await packTar([file(".wh.a"), file(".wh.a")]), "hostile-entry", "duplicate");
  });

  it("refuses a name with a NUL byte", async () => {
    await expectRefused(await packTar([file("x", "1", { pax: { path: "a\0b" } })]), "hostile-entry", "NUL");
  });

  it("refuses an entry whose parent is a non-directory of the same layer", async () => {
    await expectRefused(await packTar([file("f", "1"), file("f/x", "2")]), "hostile-entry", "'f/x'", "not a directory");
  });

  it("refuses a whiteout name used as a directory and a whiteout of '..'", async () => {
    await expectRefused(await packTar([file(".wh.x/y")]), "hostile-entry", "whiteout name used as a directory");
    await expectRefused(await packTar([file(".wh...")]), "hostile-entry", "whiteout of '..'");
  });

  it("refuses overlay-private xattrs in the archive", async () => {
    const data = await packTar([dir("d/", { pax: { "SCHILY.xattr.trusted.overlay.redirect": "/etc" } })]);
    await expectRefused(data, "hostile-entry", "trusted.overlay.redirect");
  });

  it("refuses an owner outside uid_t", async () => {
    await expectRefused(await packTar([file("a", "1", { pax: { uid: "-5" } })]), "corrupt", "uid -5 is out of range");
    await expectRefused(await packTar([file("a", "1", { pax: { gid: "4294967295" } })]), "corrupt", "gid");
  });

  it("refuses a directory entry that carries data", async () => {
    const data = rawTar([{ header: ustar({ name: "d/", typeflag: "5", size: 512 }), data: Buffer.alloc(512, 1) }]);
    await expectRefused(data, "hostile-entry", "directory entry carries data");
  });

  it("refuses a layer root that is not a directory", async () => {
    await expectRefused(
      await packTar([file("./", "x", { type: "file", pax: { path: "." } })]),
      "hostile-entry",
      "root",
    );
  });

  it("refuses unknown entry types and GNU sparse files as unsupported", async () => {
    const unknown = rawTar([{ header: ustar({ name: "vol", typeflag: "V" }) }]);
    await expectRefused(unknown, "unsupported", "unknown entry type");
    const sparse = await packTar([file("s", "x", { pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0" } })]);
    await expectRefused(sparse, "unsupported", "sparse");
  });

  it("refuses to unpack over an existing destination and leaves it untouched", async () => {
    mkdirSync(dest);
    writeFileSync(join(dest, "mine"), "x");
    const err = await unpack(await packTar([file("a")])).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "conflict" });
    expect(readdirSync(parent)).toEqual(["layer"]);
    expect(readdirSync(dest)).toEqual(["mine"]);
  });

  it("refuses a malformed expectedDiffId before reading anything", async () => {
    const err = await unpack(await packTar([file("a")]), { expectedDiffId: "md5:abc" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("passes the input's own error through and cleans up", async () => {
    const data = await packTar([file("a", Buffer.alloc(100_000, 1))]);
    const failing = Readable.from(
      (async function* () {
        yield data.subarray(0, 4096);
        throw Object.assign(new Error("disk on fire"), { code: "EIO" });
      })(),
    );
    const err = await unpackLayer(failing, dest, { whiteout: "file" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "EIO", message: "disk on fire" });
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe("unpackLayer without root", () => {
  // Linux >= 5.8 lets anyone make a 0/0 whiteout; other devices and trusted.* xattrs need root.
  it.skipIf(isRoot)("refuses device nodes and trusted.overlay.opaque with a clear unsupported error", async () => {
    const dev = { name: "null", type: "character-device", devmajor: 1, devminor: 3, mtime: MTIME } as const;
    await expectRefused(await packTar([dev]), "unsupported", "needs root");
    await expectRefused(await packTar([file("d/.wh..wh..opq")]), "unsupported", "trusted.overlay.opaque");
  });

  it.skipIf(isRoot)("file style works without root", async () => {
    await unpack(await packTar([file("d/.wh..wh..opq"), file("d/.wh.x"), file("d/f", "1")]), { whiteout: "file" });
    expect(xattr(join(dest, "d"), "user.overlay.opaque")).toBe("y");
    expect(readdirSync(join(dest, "d")).sort()).toEqual([".wh.x", "f"]);
  });
});

describe("unpackLayer: overlay metadata only where the layer asks", () => {
  it("adds no overlay xattrs to a plain file", async () => {
    await unpack(await packTar([file("a", "1")]), { whiteout: "file" });
    expect(llistxattr(join(dest, "a")).filter((n) => n.includes("overlay"))).toEqual([]);
  });
});
