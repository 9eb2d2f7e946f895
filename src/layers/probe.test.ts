import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apply, dir, file, opaque, whiteout, xattr } from "../testing/fixture.js";
import { listDirNames, listLayerDir, NONE, nameKey, probeEntry, readDirFlags } from "./probe.js";

let root: string;
beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "unionfs-layers-probe-")));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const b = (s: string) => Buffer.from(s);
const flagsOf = (path: string) => readDirFlags(b(path));

describe("probeEntry", () => {
  it("probes directory and file names of 252 to 255 bytes, which cannot have a .wh. sibling", () => {
    const names = [252, 253, 255].map((n) => "d".repeat(n));
    apply(root, [...names.map((n) => dir(n)), file("f".repeat(254), "x")]);
    for (const name of names) expect(probeEntry(b(root), b(name), flagsOf(root)).kind).toBe("dir");
    expect(probeEntry(b(root), b("f".repeat(254)), flagsOf(root)).kind).toBe("other");
    expect(probeEntry(b(root), b("g".repeat(255)), flagsOf(root))).toBe(NONE);
  });

  it("reads every whiteout encoding an unprivileged layer can hold", () => {
    apply(root, [
      whiteout("gone-wh", "wh-file"),
      dir("x"),
      whiteout("x/gone-xattr", "user-xattr"),
      file("x/kept-empty", ""),
    ]);
    expect(probeEntry(b(root), b("gone-wh"), flagsOf(root)).kind).toBe("whiteout");
    const x = flagsOf(join(root, "x"));
    expect(x.xwhiteouts).toBe(true);
    expect(probeEntry(b(join(root, "x")), b("gone-xattr"), x).kind).toBe("whiteout");
    expect(probeEntry(b(join(root, "x")), b("kept-empty"), x).kind).toBe("other");
  });

  it("reads opaque directories in every unprivileged encoding, AUFS's dir-plus-whiteout included", () => {
    apply(root, [opaque("o-user", "user"), opaque("o-marker", "wh-file"), dir("aufs"), dir("plain")]);
    writeFileSync(join(root, ".wh.aufs"), "");
    const probe = (name: string) => probeEntry(b(root), b(name), flagsOf(root));
    for (const name of ["o-user", "o-marker", "aufs"]) {
      const p = probe(name);
      expect(p.kind === "dir" && p.flags.opaque, name).toBe(true);
    }
    const plain = probe("plain");
    expect(plain.kind === "dir" && plain.flags.opaque).toBe(false);
  });

  it("reads a directory's redirect as bytes", () => {
    apply(root, [dir("moved"), xattr("moved", "user.overlay.redirect", "/old/place")]);
    const p = probeEntry(b(root), b("moved"), flagsOf(root));
    expect(p.kind === "dir" ? p.flags.redirect?.toString() : null).toBe("/old/place");
  });
});

describe("listLayerDir", () => {
  it("lists a name that is not UTF-8 as its bytes", () => {
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "caf\xe9"
    writeFileSync(Buffer.concat([b(`${root}/`), name]), "latin-1");
    const listed = listLayerDir(b(root), flagsOf(root));
    expect(listed.map((c) => nameKey(c.name))).toEqual([nameKey(name)]);
    expect(listed[0]?.probe.kind).toBe("other");
  });

  it("folds meta entries into whiteouts, once per deleted name", () => {
    apply(root, [whiteout("gone", "wh-file"), opaque("o", "wh-file"), file("kept", "k")]);
    const listed = listLayerDir(b(root), flagsOf(root))
      .map((c) => `${c.name.toString()}:${c.probe.kind}`)
      .sort();
    expect(listed).toEqual(["gone:whiteout", "kept:other", "o:dir"]);
  });
});

describe("listDirNames", () => {
  it("lists names as byte strings and whiteouts of every unprivileged encoding, without meta entries", () => {
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "caf\xe9"
    apply(root, [
      whiteout("gone", "wh-file"),
      opaque("o", "wh-file"),
      file("kept", "k"),
      whiteout("o/gone-xattr", "user-xattr"),
      file("o/kept-empty", ""),
    ]);
    writeFileSync(Buffer.concat([b(`${root}/`), name]), "latin-1");
    const top = listDirNames(b(root), flagsOf(root));
    expect([...top.names].sort()).toEqual([nameKey(name), "kept", "o"].sort());
    expect(top.whiteouts).toEqual(["gone"]);
    const o = listDirNames(b(join(root, "o")), flagsOf(join(root, "o")));
    expect(o).toEqual({ names: ["kept-empty"], whiteouts: ["gone-xattr"] });
  });
});
