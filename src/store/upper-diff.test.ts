import { describe, expect, it } from "vitest";
import { apply, dir, file, opaque, symlink, WHITEOUT_FORMATS, whiteout } from "../testing/fixture.js";
import { nestedRedirectStack } from "../testing/redirect-layers.js";
import { useScratch } from "../testing/scratch.js";
import { diffUpper } from "./upper-diff.js";

const itRoot = it.runIf(process.getuid?.() === 0);

const lines = (changes: Array<{ kind: string; path: string }>) => changes.map((c) => `${c.kind} ${c.path}`);

describe("diffUpper", () => {
  const scratch = useScratch("unionfs-diff-");

  itRoot("lists added, changed and deleted paths like docker diff, sorted", async () => {
    const s = scratch();
    const [upper, lower] = [s.path("upper"), s.path("lower")];
    apply(lower, [file("etc/passwd", "root"), file("etc/old"), dir("var/lib"), file("keep")]);
    apply(upper, [
      file("etc/passwd", "root\nme"), // copied up and changed
      whiteout("etc/old"),
      file("etc/new"),
      dir("var"), // copied up only as the parent of a change
      dir("var/lib"),
      file("var/lib/db"),
      dir("home/me"),
      file("home/me/.profile"),
      symlink("link", "keep"),
    ]);
    expect(lines(await diffUpper(upper, [lower]))).toEqual([
      "C /etc",
      "A /etc/new",
      "D /etc/old",
      "C /etc/passwd",
      "A /home",
      "A /home/me",
      "A /home/me/.profile",
      "A /link",
      "C /var",
      "C /var/lib",
      "A /var/lib/db",
    ]);
  });

  it("walks directory names of 252 to 255 bytes, which cannot have a .wh. whiteout", async () => {
    const s = scratch();
    const [upper, lower] = [s.path("upper"), s.path("lower")];
    const [long, longer] = ["d".repeat(252), "e".repeat(255)];
    apply(lower, [dir(longer), file(`${longer}/old`)]);
    apply(upper, [dir(long), file(`${long}/f`), dir(longer), file(`${longer}/new`)]);
    expect(lines(await diffUpper(upper, [lower]))).toEqual([
      `A /${long}`,
      `A /${long}/f`,
      `C /${longer}`,
      `A /${longer}/new`,
    ]);
  });

  itRoot.each(WHITEOUT_FORMATS)("reads %s whiteouts as deletions", async (format) => {
    const s = scratch();
    const [upper, lower] = [s.path("upper"), s.path("lower")];
    apply(lower, [file("d/x"), file("d/y")]);
    apply(upper, [dir("d"), whiteout("d/x", format)]);
    expect(lines(await diffUpper(upper, [lower]))).toEqual(["C /d", "D /d/x"]);
  });

  itRoot("lists an opaque directory that existed below as changed and all inside it as added", async () => {
    const s = scratch();
    const [upper, lower] = [s.path("upper"), s.path("lower")];
    apply(lower, [file("o/same"), file("o/gone"), file("p/x")]);
    apply(upper, [opaque("o"), file("o/same"), file("o/new"), opaque("fresh", "wh-file"), file("fresh/f")]);
    expect(lines(await diffUpper(upper, [lower]))).toEqual(["A /fresh", "A /fresh/f", "C /o", "A /o/new", "A /o/same"]);
  });

  itRoot("respects the lowers' own whiteouts and opaque directories", async () => {
    const s = scratch();
    const [upper, top, bottom] = [s.path("upper"), s.path("top"), s.path("bottom")];
    apply(bottom, [file("a"), file("o/b"), file("o/c"), file("f")]);
    apply(top, [whiteout("a"), opaque("o"), file("o/c"), dir("f")]);
    apply(upper, [file("a"), dir("o"), file("o/b"), file("o/c"), whiteout("stale"), dir("f"), file("f/x")]);
    expect(lines(await diffUpper(upper, [top, bottom]))).toEqual([
      "A /a", // deleted in top: new again
      "C /f", // a directory in top over a file in bottom
      "A /f/x",
      "C /o",
      "A /o/b", // hidden by top's opaque o
      "C /o/c",
      // "stale" whites out nothing below: not a change
    ]);
  });

  itRoot("lists a renamed (redirected) directory and all of its content as added", async () => {
    const s = scratch();
    const [upper, lower] = [s.path("upper"), s.path("lower")];
    apply(lower, [file("src/a"), file("src/sub/b"), file("src/gone")]);
    apply(upper, [
      whiteout("src"),
      dir("dst", { xattrs: { "trusted.overlay.redirect": "/src" } }),
      file("dst/mine"),
      whiteout("dst/gone"),
    ]);
    expect(lines(await diffUpper(upper, [lower]))).toEqual([
      "A /dst",
      "A /dst/a",
      "A /dst/mine",
      "A /dst/sub",
      "A /dst/sub/b",
      "D /src",
    ]);
  });

  itRoot("lists what a relative redirect below an absolute one brings along", async () => {
    const { upper, lowers } = nestedRedirectStack(scratch().root);
    expect(lines(await diffUpper(upper, lowers))).toEqual(["C /x", "D /x/c", "A /x/d", "A /x/d/kept", "A /x/d/new"]);
  });

  it("lists everything as added without lowers", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("a-b"), file("a/c"), whiteout("w", "wh-file")]);
    expect(lines(await diffUpper(upper, []))).toEqual(["A /a", "A /a-b", "A /a/c"]);
  });
});
