import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apply, dir, file, opaque, whiteout, xattr } from "../testing/fixture.js";
import { type MergedDir, mergedChildren, parseRedirect, stackAt } from "./merge.js";

let root: string;
beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "unionfs-layers-merge-")));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const b = (s: string) => Buffer.from(s);

/** Layer directories l0 (top) .. lN under root, each built from its entries. */
function layers(...entries: Parameters<typeof apply>[1][]): Buffer[] {
  return entries.map((e, i) => {
    const path = join(root, `l${i}`);
    apply(path, [dir(""), ...e]);
    return b(path);
  });
}

/** The merged listing of `path` (components) as "name:type" lines, recursively. */
function tree(lowers: Buffer[], path: string[] = []): string[] {
  const at: MergedDir = { upper: null, stack: stackAt(lowers, 0, path.map(b)) };
  const out: string[] = [];
  const walk = (d: MergedDir, prefix: string) => {
    for (const c of mergedChildren(lowers, d)) {
      const name = `${prefix}${c.name.toString()}`;
      out.push(`${name}:${c.dir === null ? "file" : "dir"}`);
      if (c.dir !== null) walk(c.dir, `${name}/`);
    }
  };
  walk(at, "");
  return out;
}

describe("merging a stack of lower layers", () => {
  it("topmost wins, whiteouts hide what is below, opaque directories stop the merge", () => {
    const lowers = layers(
      [file("a", "top"), whiteout("b", "wh-file"), opaque("o", "user"), file("o/new")],
      [file("a", "low"), file("b"), dir("o"), file("o/old"), file("c")],
    );
    expect(tree(lowers)).toEqual(["a:file", "c:file", "o:dir", "o/new:file"]);
  });

  it("follows a redirect on a lower directory to its content in the layers below", () => {
    const lowers = layers(
      [dir("new"), xattr("new", "user.overlay.redirect", "/old"), file("new/added"), whiteout("old", "wh-file")],
      [dir("old"), file("old/kept"), dir("rel"), dir("rel/from"), file("rel/from/f")],
    );
    expect(tree(lowers)).toEqual([
      "new:dir",
      "new/added:file",
      "new/kept:file",
      "rel:dir",
      "rel/from:dir",
      "rel/from/f:file",
    ]);
  });

  it("follows a relative redirect from the directory's parent", () => {
    const lowers = layers(
      [dir("p"), dir("p/to"), xattr("p/to", "user.overlay.redirect", "from"), whiteout("p/from", "wh-file")],
      [dir("p"), dir("p/from"), file("p/from/f")],
    );
    expect(tree(lowers, ["p"])).toEqual(["to:dir", "to/f:file"]);
  });

  it("looks a relative redirect inside a directory reached through an absolute one up in that directory's lowers", () => {
    // l1 renamed a/b to a/c (relative redirect "b"); l0 then renamed a to x ("/a")
    const lowers = layers(
      [dir("x"), xattr("x", "user.overlay.redirect", "/a"), whiteout("a", "wh-file")],
      [dir("a/c"), xattr("a/c", "user.overlay.redirect", "b"), file("a/c/new"), whiteout("a/b", "wh-file")],
      [dir("a/b"), file("a/b/kept")],
    );
    // overlayfs looks "b" up in x's lower stack (l1/a, l2/a): l2/a/b/kept shows at x/c/kept
    expect(tree(lowers)).toEqual(["x:dir", "x/c:dir", "x/c/kept:file", "x/c/new:file"]);
  });

  it("refuses a redirect overlayfs refuses, and then merges at the directory's own name", () => {
    const refused = [
      "",
      "/",
      "//old",
      "/old/",
      "/old//x",
      "/..",
      "/old/..",
      "/.",
      "..",
      ".",
      "a/b",
      "../old",
      "/o\0ld",
    ];
    for (const value of refused) expect(parseRedirect(b(value)), JSON.stringify(value)).toBeNull();
    expect(parseRedirect(b("/old/x"))).toEqual({ absolute: true, parts: [b("old"), b("x")] });
    expect(parseRedirect(b("...")), "a name of three dots is a name").toEqual({ absolute: false, parts: [b("...")] });
    const lowers = layers(
      [
        dir("up"),
        xattr("up", "user.overlay.redirect", "/.."),
        dir("p/rel"),
        xattr("p/rel", "user.overlay.redirect", ".."),
      ],
      [dir("up"), file("up/own"), file("p/rel/own"), file("p/f")],
    );
    expect(tree(lowers)).toEqual(["p:dir", "p/f:file", "p/rel:dir", "p/rel/own:file", "up:dir", "up/own:file"]);
  });
});
