/**
 * Names are bytes in the union core, in-process over temp dirs (no FUSE, no root): a lower name
 * that is not valid UTF-8 is listed, looked up, read, copied up, renamed and deleted under its
 * own bytes, redirects to such names are read and written as bytes, and a symlink target that
 * is not UTF-8 round-trips, in both whiteout styles the core writes. What lands in the upper is checked as bytes on disk. (fuse-native cannot carry
 * such names: its binding decodes and encodes UTF-8; see src/fuse/path-nodes.ts.)
 */
import { mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OverlayKey } from "../format/overlay-xattr.js";
import type { WhiteoutStyle } from "../format/whiteout-style.js";
import { lsetxattr } from "../sys/xattr.js";
import { dir, file } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import { errnoOf, type StackPaths, UnionHarness, whiteoutStyleUnavailable } from "../testing/union-harness.js";

const STYLES: readonly WhiteoutStyle[] = ["file", "chardev"];

/** "caf\xe9" and "na\xefve": Latin-1 bytes, not valid UTF-8 */
const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
const NAIVE = Buffer.from([0x6e, 0x61, 0xef, 0x76, 0x65]);
/** a symlink target that is not UTF-8 */
const TARGET = Buffer.from([0x74, 0xff, 0x2f, 0x78]);

/** A path of raw components joined by "/". */
const at = (...parts: (string | Buffer)[]) =>
  Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from("/"), Buffer.from(p)])));

/** The entries of a directory on disk, as bytes, sorted bytewise. */
const onDisk = (path: string) => readdirSync(path, { encoding: "buffer" }).sort(Buffer.compare);

for (const style of STYLES) {
  const unavailable = whiteoutStyleUnavailable(style);
  const suffix = `(--whiteout=${style})${unavailable === null ? "" : ` [skipped: ${unavailable}]`}`;

  describe.skipIf(unavailable !== null)(`names that are not UTF-8 ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    /** a lower with d/plain and d/caf\xe9, and a symlink with a non-UTF-8 target */
    const open = () =>
      UnionHarness.open(scratch(), {
        lowers: [[dir("d"), file("d/plain", "p")]],
        options: { whiteout: style },
        prepare: (paths: StackPaths) => {
          const lower = paths.lowers[0] as string;
          writeFileSync(at(lower, "d", CAFE), "latin-1 name");
          symlinkSync(TARGET, at(lower, "l"));
        },
      });

    it("is listed, looked up and read under its bytes", async () => {
      const h = await open();
      expect(h.listBytes("d")).toEqual([CAFE, Buffer.from("plain")]);
      expect(h.exists(at("d", CAFE))).toBe(true);
      expect(h.readText(at("d", CAFE))).toBe("latin-1 name");
      expect(h.stat(at("d", CAFE)).size).toBe(12n);
    });

    it("is copied up under the same bytes when written to", async () => {
      const h = await open();
      h.writeAt(at("d", CAFE), "LATIN", 0);
      expect(onDisk(h.upper("d"))).toEqual([CAFE]);
      expect(h.readText(at("d", CAFE))).toBe("LATIN-1 name");
      expect(h.listBytes("d")).toEqual([CAFE, Buffer.from("plain")]);
    });

    it("is renamed to another such name, leaving a whiteout with the old bytes", async () => {
      const h = await open();
      h.mv(at("d", CAFE), at("d", NAIVE));
      expect(h.listBytes("d")).toEqual([NAIVE, Buffer.from("plain")]);
      expect(h.exists(at("d", CAFE))).toBe(false);
      expect(h.readText(at("d", NAIVE))).toBe("latin-1 name");
      expect(h.upperListingBytes("d")).toEqual({ names: [NAIVE], whiteouts: [CAFE] });
    });

    it("is deleted with a whiteout of the same bytes, which a new core reads back", async () => {
      const h = await open();
      h.rm(at("d", CAFE));
      expect(h.listBytes("d")).toEqual([Buffer.from("plain")]);
      expect(h.upperListingBytes("d")).toEqual({ names: [], whiteouts: [CAFE] });
      const again = await h.remount();
      expect(again.listBytes("d")).toEqual([Buffer.from("plain")]);
      expect(again.exists(at("d", CAFE))).toBe(false);
      // and a new file of that name replaces the whiteout
      again.writeFile(at("d", CAFE), "new");
      expect(again.listBytes("d")).toEqual([CAFE, Buffer.from("plain")]);
      expect(again.upperListingBytes("d")).toEqual({ names: [CAFE], whiteouts: [] });
    });

    it("a directory of such a name holding such a name is emptied, removed and made again", async () => {
      const h = await open();
      h.mkdir(at(NAIVE));
      h.writeFile(at(NAIVE, CAFE), "x");
      h.mv(at("d", CAFE), at(NAIVE, "moved"));
      h.rm(at(NAIVE, CAFE));
      h.rm(at(NAIVE, "moved"));
      h.rmdir(at(NAIVE));
      h.rm(at("d", "plain"));
      h.rmdir("d");
      expect(h.listBytes("")).toEqual([Buffer.from("l")]);
      expect(h.upperListingBytes("")).toEqual({ names: [], whiteouts: [Buffer.from("d")] });
      h.mkdir(at("d"));
      h.mkdir(at("d", CAFE));
      expect(h.listBytes("d")).toEqual([CAFE]);
      expect(onDisk(h.upper("d"))).toEqual([CAFE]);
    });

    it("redirects hold the bytes: a lower one is followed, a renamed directory gets one", async () => {
      const slash = (name: Buffer) => Buffer.concat([Buffer.from("/"), name]);
      const h = await UnionHarness.open(scratch(), {
        lowers: [[dir("moved")], []],
        options: { whiteout: style },
        prepare: ({ lowers: [top = "", bottom = ""] }: StackPaths) => {
          lsetxattr(at(top, "moved"), "user.overlay.redirect", slash(NAIVE));
          mkdirSync(at(bottom, NAIVE));
          writeFileSync(at(bottom, NAIVE, "g"), "g");
          mkdirSync(at(top, CAFE));
          writeFileSync(at(top, CAFE, "f"), "top");
          mkdirSync(at(bottom, CAFE));
          writeFileSync(at(bottom, CAFE, "low"), "bottom");
        },
      });
      expect(h.list("moved")).toEqual(["g"]);
      h.mv(at(CAFE), "renamed");
      expect(h.upperXattr("renamed", OverlayKey.redirect)).toEqual(slash(CAFE));
      expect(h.list("renamed")).toEqual(["f", "low"]);
      const again = await h.remount();
      expect(again.list("renamed")).toEqual(["f", "low"]);
      expect(again.readText("renamed/low")).toBe("bottom");
      expect(again.exists(at(CAFE))).toBe(false);
    });

    it("a symlink target that is not UTF-8 round-trips through readlink, copy-up and symlink", async () => {
      const h = await open();
      expect(h.readlinkBytes("l")).toEqual(TARGET);
      h.utimens("l", 1_000_000_000n, 2_000_000_000n);
      expect(readlinkSync(h.upper("l"), { encoding: "buffer" })).toEqual(TARGET);
      expect(h.readlinkBytes("l")).toEqual(TARGET);
      h.symlink(TARGET, at("d", NAIVE));
      expect(h.readlinkBytes(at("d", NAIVE))).toEqual(TARGET);
      expect(readlinkSync(at(h.upper("d"), NAIVE), { encoding: "buffer" })).toEqual(TARGET);
    });
  });
}

describe("names that are UTF-8", () => {
  const scratch = useScratch("unionfs-core-");

  it("are taken and given as text by the harness, and stored as their UTF-8 bytes", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("d/café", "c")]] });
    expect(h.list("d")).toEqual(["café"]);
    h.mv("d/café", "d/naïve");
    h.symlink("→ ü", "d/link");
    expect(h.list("d")).toEqual(["link", "naïve"]);
    expect(h.readlink("d/link")).toBe("→ ü");
    expect(onDisk(h.upper("d")).map((n) => n.toString("utf8"))).toContain("naïve");
    expect(readlinkSync(h.upper("d/link"))).toBe("→ ü");
  });
});

// A `.wh.` entry is union metadata in every layer unionfs reads (format/whiteout.ts): a new
// object under such a name would hide its target and itself, so, as fuse-overlayfs does, the
// name is refused, and a whiteout file is never found by name.
for (const style of STYLES) {
  const unavailable = whiteoutStyleUnavailable(style);
  const suffix = `(--whiteout=${style})${unavailable === null ? "" : ` [skipped: ${unavailable}]`}`;

  describe.skipIf(unavailable !== null)(`names that start with .wh. ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    const open = () =>
      UnionHarness.open(scratch(), { lowers: [[file("x", "x"), file("y", "y")]], options: { whiteout: style } });

    it("are refused with EINVAL by every call that makes a name, and nothing changes", async () => {
      const h = await open();
      const made = [
        errnoOf(() => h.writeFile(".wh.x", "")),
        errnoOf(() => h.mkdir(".wh.x")),
        errnoOf(() => h.mknod(".wh.x", 0o10644)),
        errnoOf(() => h.symlink("x", ".wh.x")),
        errnoOf(() => h.ln("y", ".wh.x")),
        errnoOf(() => h.mv("y", ".wh.x")),
        errnoOf(() => h.mkdir(".wh..wh..opq")),
      ];
      expect(made).toEqual(Array(made.length).fill("EINVAL"));
      expect(h.list("")).toEqual(["x", "y"]);
      expect(onDisk(h.upper()).filter((n) => n.toString().startsWith(".wh."))).toEqual([]);
    });

    it("are not found, so a whiteout file cannot be removed through the mount", async () => {
      const h = await open();
      h.rm("x");
      expect([errnoOf(() => h.stat(".wh.x")), errnoOf(() => h.rm(".wh.x"))]).toEqual(["ENOENT", "ENOENT"]);
      expect(h.list("")).toEqual(["y"]);
    });
  });
}
