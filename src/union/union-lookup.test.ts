/**
 * The union core's read rules, in-process over temp dirs (no FUSE, no root): lookup through the
 * layers (topmost wins, whiteouts in every encoding, opaque directories, a lower file under a
 * directory), readdir (union, whiteouts, `.`/`..`, d_ino = st_ino, order), names of 252–255
 * bytes, and the three places issue 15 found the union's reader and the store's disagreeing.
 * The mount suites (read-encodings, read-ops) check the same rules against kernel overlayfs.
 */
import { constants as fsc, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dir, file, OPAQUE_FORMATS, opaque, symlink, WHITEOUT_FORMATS, whiteout, xattr } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import {
  errnoOf,
  opaqueFormatUnavailable,
  UnionHarness as Union,
  whiteoutFormatUnavailable,
} from "../testing/union-harness.js";

/** A name of `bytes` bytes, ending in `tag` so that names of several lengths differ early. */
const longName = (bytes: number, tag = "") => `${tag}${"n".repeat(bytes - tag.length)}`;

describe("lookup", () => {
  const scratch = useScratch("unionfs-core-");

  it("the topmost object wins: upper over lower, a file over a directory, a directory over a file", async () => {
    const h = await Union.open(scratch(), {
      upper: [file("u", "upper")],
      lowers: [
        [file("f", "top"), file("fod", "file over a dir"), dir("dof"), file("dof/inner", "in"), file("u", "lower")],
        [file("f", "bottom"), dir("fod"), file("fod/x"), file("dof", "file under a dir")],
      ],
    });
    expect(h.readText("u")).toBe("upper");
    expect(h.readText("f")).toBe("top");
    expect(h.stat("fod").mode & fsc.S_IFMT).toBe(fsc.S_IFREG);
    expect(h.readText("fod")).toBe("file over a dir");
    expect(errnoOf(() => h.stat("fod/x"))).toBe("ENOTDIR");
    expect(h.stat("dof").mode & fsc.S_IFMT).toBe(fsc.S_IFDIR);
    expect(h.list("dof")).toEqual(["inner"]);
    expect(h.lookup("missing")).toBeNull();
    expect(errnoOf(() => h.stat("missing/x"))).toBe("ENOENT");
  });

  it("below a directory only directories merge: a lower file under it, and what is below that, are hidden", async () => {
    const h = await Union.open(scratch(), {
      upper: [dir("ud"), file("ud/up")],
      lowers: [
        [dir("d"), file("d/top"), file("ud", "file under an upper dir")],
        [file("d", "file under a dir")],
        [dir("d"), file("d/bottom")],
      ],
    });
    expect(h.list("ud")).toEqual(["up"]);
    expect(h.list("d")).toEqual(["top"]);
    expect(h.lookup("d/bottom")).toBeNull();
  });

  for (const format of WHITEOUT_FORMATS) {
    const unavailable = whiteoutFormatUnavailable(format);
    const title = `a ${format} whiteout hides a file and a directory below it, in the upper and in a lower`;
    it.skipIf(unavailable !== null)(unavailable === null ? title : `${title} [skipped: ${unavailable}]`, async () => {
      const h = await Union.open(scratch(), {
        upper: [whiteout("up-gone", format), whiteout("d/up-gone", format), file("d/up-kept")],
        lowers: [
          [whiteout("gone", format), whiteout("gone-dir", format), whiteout("d/gone", format), file("d/kept")],
          [file("gone"), dir("gone-dir/sub"), file("up-gone"), file("d/gone"), file("d/up-gone"), file("d/kept-below")],
        ],
      });
      for (const path of ["gone", "gone-dir", "up-gone", "d/gone", "d/up-gone"]) expect(h.lookup(path)).toBeNull();
      expect(h.list("")).toEqual(["d"]);
      expect(h.list("d")).toEqual(["kept", "kept-below", "up-kept"]);
      expect(errnoOf(() => h.stat("gone-dir/sub"))).toBe("ENOENT");
    });
  }

  for (const format of WHITEOUT_FORMATS) {
    const unavailable = whiteoutFormatUnavailable(format);
    const title = `after a listing, lookups answered from the kept lower listings agree (${format} whiteouts)`;
    it.skipIf(unavailable !== null)(unavailable === null ? title : `${title} [skipped: ${unavailable}]`, async () => {
      const h = await Union.open(scratch(), {
        lowers: [
          [dir("d"), whiteout("d/gone", format), file("d/top", "top"), dir("d/sub"), file("d/sub/in-top")],
          [dir("d"), file("d/gone"), file("d/middle"), file("d/top", "hidden"), dir("d/sub"), file("d/sub/in-mid")],
          [dir("d"), file("d/bottom"), dir("d/sub"), file("d/sub/in-bottom")],
        ],
      });
      // every lower directory at d and d/sub is listed, and its listing kept, before any lookup
      expect(h.list("d")).toEqual(["bottom", "middle", "sub", "top"]);
      expect(h.list("d/sub")).toEqual(["in-bottom", "in-mid", "in-top"]);
      expect(h.lookup("d/gone")).toBeNull();
      expect(h.lookup("d/missing")).toBeNull();
      expect(h.readText("d/top")).toBe("top");
      for (const path of ["d/bottom", "d/middle", "d/sub/in-bottom", "d/sub/in-mid"])
        expect(h.lookup(path)).not.toBeNull();
    });
  }

  it("a whiteout in a middle layer hides the layers below it, not the ones above", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [file("above", "top")],
        [whiteout("above", "wh-file"), whiteout("below", "user-xattr")],
        [file("below")],
      ],
    });
    expect(h.list("")).toEqual(["above"]);
    expect(h.readText("above")).toBe("top");
  });

  for (const format of OPAQUE_FORMATS) {
    const unavailable = opaqueFormatUnavailable(format);
    const title = `a ${format}-opaque directory stops the merge, in the upper and in a lower`;
    it.skipIf(unavailable !== null)(unavailable === null ? title : `${title} [skipped: ${unavailable}]`, async () => {
      const h = await Union.open(scratch(), {
        upper: [opaque("uo", format), file("uo/up")],
        lowers: [
          [opaque("lo", format), file("lo/top"), file("uo/hidden")],
          [file("lo/hidden"), dir("lo/hidden-dir"), file("uo/hidden2")],
        ],
      });
      expect(h.list("uo")).toEqual(["up"]);
      expect(h.list("lo")).toEqual(["top"]);
      expect(h.lookup("lo/hidden-dir")).toBeNull();
    });
  }

  it("every encoding this process can write, mixed in one directory (as in read-encodings.mount.test.ts)", async () => {
    const whiteouts = WHITEOUT_FORMATS.filter((f) => whiteoutFormatUnavailable(f) === null);
    const opaques = OPAQUE_FORMATS.filter((f) => opaqueFormatUnavailable(f) === null);
    const h = await Union.open(scratch(), {
      lowers: [
        [
          ...whiteouts.map((f) => whiteout(`m/w-${f}`, f)),
          ...opaques.map((f) => opaque(`m/o-${f}`, f)),
          file("m/o-user/top"),
        ],
        [...whiteouts.map((f) => file(`m/w-${f}`)), ...opaques.map((f) => file(`m/o-${f}/hidden`)), file("m/d")],
      ],
    });
    expect(h.list("m")).toEqual(["d", ...opaques.map((f) => `o-${f}`)].sort());
    for (const f of opaques) expect(h.list(`m/o-${f}`)).toEqual(f === "user" ? ["top"] : []);
  });

  // Kernel overlayfs shows some of these (read-encodings.mount.test.ts pins where); unionfs
  // hides every whiteout, as DESIGN.md asks: a whiteout is never user data.
  it("a whiteout with nothing below it is hidden too", async () => {
    const whiteouts = WHITEOUT_FORMATS.filter((f) => whiteoutFormatUnavailable(f) === null);
    const h = await Union.open(scratch(), {
      upper: whiteouts.map((f) => whiteout(`u/w-${f}`, f)),
      lowers: [[file("solo/f"), ...whiteouts.map((f) => whiteout(`solo/w-${f}`, f))], [dir("low")]],
    });
    expect([h.list("u"), h.list("solo"), h.list("low")]).toEqual([[], ["f"], []]);
  });

  it("names of 252–255 bytes: found, read and listed; a user-xattr whiteout hides one", async () => {
    const names = [252, 253, 254, 255].map((n) => longName(n, `f${n}-`));
    // 255 bytes of two-byte characters and one ASCII: NAME_MAX counts bytes
    const wide = `${"é".repeat(127)}x`;
    const hidden = longName(255, "hidden-");
    const h = await Union.open(scratch(), {
      lowers: [
        [...names.map((n) => file(`d/${n}`, n.slice(0, 4))), whiteout(`d/${hidden}`, "user-xattr")],
        [file(`d/${wide}`, "wide"), file(`d/${hidden}`, "hidden")],
      ],
    });
    for (const n of names) expect(h.readText(`d/${n}`)).toBe(n.slice(0, 4));
    expect(h.readText(`d/${wide}`)).toBe("wide");
    expect(h.lookup(`d/${hidden}`)).toBeNull();
    expect(h.list("d")).toEqual([...names, wide].sort());
    expect(errnoOf(() => h.lookup(`d/${longName(256)}`))).toBe("ENAMETOOLONG");
    expect(errnoOf(() => h.lookup(`d/${"é".repeat(128)}`))).toBe("ENAMETOOLONG");
  });
});

describe("readdir", () => {
  const scratch = useScratch("unionfs-core-");

  it("the union of the layers, top wins, whiteouts remove names, meta entries never show, sorted", async () => {
    const h = await Union.open(scratch(), {
      upper: [file("d/y", "upper"), whiteout("d/a", "wh-file"), file("d/b", "upper b")],
      lowers: [
        [file("d/b", "top"), whiteout("d/c", "wh-file"), file("d/e"), opaque("d/o", "wh-file"), file("d/o/in")],
        [file("d/a"), file("d/b", "bottom"), file("d/c"), dir("d/z"), symlink("d/l", "e"), file("d/o/hidden")],
      ],
    });
    const entries = h.readdir("d");
    expect(entries.map((e) => e.name)).toEqual([".", "..", "b", "e", "l", "o", "y", "z"]);
    const names = entries.slice(2).map((e) => e.name);
    expect(names).toEqual([...names].sort());
    expect(h.list("d/o")).toEqual(["in"]);
    expect(h.readText("d/b")).toBe("upper b");
    const typeOf = (name: string) => entries.find((e) => e.name === name)?.mode;
    expect([typeOf("b"), typeOf("l"), typeOf("z"), typeOf("o")]).toEqual([
      fsc.S_IFREG,
      fsc.S_IFLNK,
      fsc.S_IFDIR,
      fsc.S_IFDIR,
    ]);
  });

  it("d_ino is the st_ino lookup gives, `.` the directory's own, `..` its parent's; d_type its type", async () => {
    const h = await Union.open(scratch(), {
      upper: [file("a/up"), dir("new"), file("new/n")],
      lowers: [
        [dir("a"), file("a/f1"), dir("a/sub"), file("a/sub/g"), symlink("a/ln", "f1")],
        [file("a/f1", "hidden"), file("a/f2"), dir("a/sub"), file("a/sub/h"), file("top")],
      ],
    });
    const check = (path: string, parent: string) => {
      const entries = h.readdir(path);
      expect(entries.slice(0, 2).map((e) => [e.name, e.ino])).toEqual([
        [".", h.stat(path).ino],
        ["..", h.stat(parent).ino],
      ]);
      for (const e of entries.slice(2)) {
        const child = join(path, e.name);
        const st = h.stat(child);
        expect([child, e.ino, e.mode]).toEqual([child, st.ino, st.mode & fsc.S_IFMT]);
        if (e.mode === fsc.S_IFDIR) check(child, path);
      }
    };
    check("", "");
    // and still after a copy-up, and in a new core over the same layers
    h.chmod("a/f1", 0o600);
    h.chmod("a/sub/h", 0o600);
    check("", "");
    const again = await h.remount();
    const entries = again.readdir("a");
    for (const e of entries.slice(2)) expect(e.ino).toBe(again.stat(join("a", e.name)).ino);
    expect(entries.map((e) => e.ino)).toEqual(h.readdir("a").map((e) => e.ino));
  });
});

describe("where the union's reader and the store's disagreed (issue 15)", () => {
  const scratch = useScratch("unionfs-core-");

  it("a directory name of 252–255 bytes is looked up, merged, listed and written into", async () => {
    const dirs = [252, 253, 254, 255].map((n) => longName(n, `d${n}-`));
    const h = await Union.open(scratch(), {
      lowers: [dirs.map((d) => file(`${d}/top`, "t")), dirs.flatMap((d) => [file(`${d}/bottom`, "b"), file(`${d}/x`)])],
    });
    expect(h.list("")).toEqual(dirs);
    for (const d of dirs) {
      expect(h.list(d)).toEqual(["bottom", "top", "x"]);
      h.writeFile(`${d}/new`, "n");
      h.rm(`${d}/x`);
      expect(h.list(d)).toEqual(["bottom", "new", "top"]);
    }
    expect(h.upperListing("").names).toEqual(dirs);
    expect(h.upperListing(dirs[3]).whiteouts).toEqual(["x"]);
  });

  it("a lower name that is not valid UTF-8 is listed as its bytes", async () => {
    const raw = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "caf\xe9" (Latin-1)
    const h = await Union.open(scratch(), {
      lowers: [[file("d/plain", "p")]],
      prepare: (paths) => writeFileSync(Buffer.concat([Buffer.from(`${paths.lowers[0]}/d/`), raw]), "latin-1 name"),
    });
    expect(h.listBytes("d")).toEqual([raw, Buffer.from("plain")]);
  });
});

// A lower layer made by a kernel overlayfs mount with redirect_dir=on (or committed from such an
// upper) holds renamed directories as a new name with `overlay.redirect` pointing at the old one:
// the layers below it merge at the redirect's path, as the kernel and the store (src/layers)
// read them. read-redirects.mount.test.ts compares these rules with kernel overlayfs.
describe("overlay.redirect on lower directories", () => {
  const scratch = useScratch("unionfs-core-");
  const redirect = (path: string, to: string) => xattr(path, "user.overlay.redirect", to);

  it("an absolute redirect merges the layers below at its path", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [dir("moved"), file("moved/top", "t"), redirect("moved", "/orig"), whiteout("orig", "wh-file")],
        [file("orig/f", "from orig"), dir("orig/sub")],
      ],
    });
    expect(h.list("")).toEqual(["moved"]);
    expect(h.list("moved")).toEqual(["f", "sub", "top"]);
    expect(h.readText("moved/f")).toBe("from orig");
  });

  it("a relative redirect replaces the name in the parent's merge set", async () => {
    const h = await Union.open(scratch(), {
      lowers: [[dir("p/new"), redirect("p/new", "old"), whiteout("p/old", "wh-file")], [file("p/old/f", "from old")]],
    });
    expect(h.list("p")).toEqual(["new"]);
    expect(h.readText("p/new/f")).toBe("from old");
  });

  it("a relative redirect inside a directory reached through an absolute one names a sibling in its merge set", async () => {
    // l1 renamed a/b to a/c, l0 then renamed a to x: "b" is looked up in x's lowers (l1/a, l2/a)
    const h = await Union.open(scratch(), {
      lowers: [
        [dir("x"), redirect("x", "/a"), whiteout("a", "wh-file")],
        [dir("a/c"), redirect("a/c", "b"), file("a/c/new"), whiteout("a/b", "wh-file")],
        [dir("a/b"), file("a/b/kept")],
      ],
    });
    expect(h.list("x/c")).toEqual(["kept", "new"]);
  });

  it("a redirect on a middle layer of three redirects only the layers below it", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [file("moved/top"), file("d/renamed/top")],
        [
          file("moved/mid"),
          redirect("moved", "/orig"),
          whiteout("orig", "wh-file"),
          file("d/renamed/mid"),
          redirect("d/renamed", "was"),
          whiteout("d/was", "wh-file"),
        ],
        [file("orig/bottom"), file("moved/not-below-the-redirect"), file("d/was/bottom"), file("d/renamed/hidden")],
      ],
    });
    expect(h.list("")).toEqual(["d", "moved"]);
    expect(h.list("moved")).toEqual(["bottom", "mid", "top"]);
    expect(h.list("d")).toEqual(["renamed"]);
    expect(h.list("d/renamed")).toEqual(["bottom", "mid", "top"]);
    expect(h.node("moved").lowers.map((l) => l.rel)).toEqual(["moved", "moved", "orig"]);
  });

  it("a target whited out, opaque, or crossing an opaque directory or a file below stops the merge there", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [
          file("to-gone/top"),
          redirect("to-gone", "/gone"),
          file("to-opaque/top"),
          redirect("to-opaque", "/o"),
          file("across/top"),
          redirect("across", "/a/b"),
          file("via-file/top"),
          redirect("via-file", "/f/x"),
        ],
        [whiteout("gone"), opaque("o", "user"), file("o/mid"), opaque("a", "user"), file("a/b/mid"), file("f")],
        [file("gone/hidden"), file("o/hidden"), file("a/b/hidden"), file("f/x/hidden")],
      ],
    });
    expect(h.list("to-gone")).toEqual(["top"]);
    expect(h.list("to-opaque")).toEqual(["mid", "top"]);
    expect(h.list("across")).toEqual(["mid", "top"]);
    expect(h.list("via-file")).toEqual(["top"]);
  });

  it("a missing target adds nothing from that layer and the search goes on below it", async () => {
    const h = await Union.open(scratch(), {
      lowers: [[file("moved/top"), redirect("moved", "/orig")], [file("other")], [file("orig/bottom")]],
    });
    expect(h.list("moved")).toEqual(["bottom", "top"]);
  });

  it("lookups below a redirected directory go on in the directories it merged", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [file("moved/top"), redirect("moved", "/orig"), file("moved/sub/top-sub")],
        [file("orig/sub/file", "deep"), file("orig/sub/deeper/f", "deeper"), file("moved/sub/hidden")],
      ],
    });
    expect(h.readText("moved/sub/file")).toBe("deep");
    expect(h.readText("moved/sub/deeper/f")).toBe("deeper");
    expect(h.list("moved/sub")).toEqual(["deeper", "file", "top-sub"]);
    expect(h.lookup("moved/sub/hidden")).toBeNull();
    const entries = h.readdir("moved/sub");
    for (const e of entries.slice(2)) expect(e.ino).toBe(h.stat(`moved/sub/${e.name}`).ino);
  });

  it("a redirect on the way down an absolute path redirects what the layers below walk", async () => {
    const h = await Union.open(scratch(), {
      lowers: [
        [file("m/top"), redirect("m", "/p/orig"), file("r/top"), redirect("r", "/s/orig")],
        [file("p/orig/mid"), redirect("p", "/q"), file("s/orig/mid"), redirect("s", "t")],
        [file("q/orig/bottom"), file("t/orig/bottom"), file("p/orig/hidden"), file("s/orig/hidden")],
      ],
    });
    expect(h.list("m")).toEqual(["bottom", "mid", "top"]);
    expect(h.list("r")).toEqual(["bottom", "mid", "top"]);
  });

  it("an upper redirect leads to a lower directory whose own redirect is followed too", async () => {
    const h = await Union.open(scratch(), {
      upper: [file("x/up"), redirect("x", "/moved"), whiteout("moved")],
      lowers: [[file("moved/top"), redirect("moved", "/orig"), whiteout("orig", "wh-file")], [file("orig/bottom")]],
    });
    expect(h.list("")).toEqual(["x"]);
    expect(h.list("x")).toEqual(["bottom", "top", "up"]);
  });

  it("a redirect that would leave the layer roots (.., empty components) is no redirect", async () => {
    const refused = ["/..", "..", "/orig/../..", "../orig", "//orig", "/orig/", "/", "sub/orig"];
    const h = await Union.open(scratch(), {
      upper: [file("up/own"), redirect("up", "/..")],
      lowers: [
        refused.flatMap((to, i) => [dir(`d${i}`), redirect(`d${i}`, to)]),
        [...refused.map((_, i) => file(`d${i}/own`)), file("orig/f"), file("sub/orig/f"), file("up/below")],
      ],
    });
    for (const i of refused.keys()) expect([refused[i], h.list(`d${i}`)]).toEqual([refused[i], ["own"]]);
    expect(h.list("up")).toEqual(["below", "own"]);
  });

  // The redirect a rename writes is the directory's path in the mount ("/moved/sub"), as the
  // kernel writes it, which the walk follows through moved's own redirect; its path in its
  // lower layer ("/orig/sub") is whited out in the layer above and would lose its content.
  it("a directory below a lower-redirected one keeps its content when renamed, and after a remount", async () => {
    const h = await Union.open(scratch(), {
      upper: [],
      lowers: [
        [file("moved/top"), redirect("moved", "/orig"), whiteout("orig", "wh-file"), dir("other")],
        [file("orig/sub/f", "deep")],
      ],
    });
    expect(h.list("moved/sub")).toEqual(["f"]);
    h.mv("moved/sub", "other/sub");
    expect(h.list("other/sub")).toEqual(["f"]);
    expect(h.upperXattr("other/sub", "redirect")?.toString()).toBe("/moved/sub");
    const again = await h.remount();
    expect(again.list("other/sub")).toEqual(["f"]);
    expect(again.readText("other/sub/f")).toBe("deep");
  });
});
