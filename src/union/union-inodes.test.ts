/**
 * Nodes are inodes, apart from their names, as the kernel's FUSE protocol addresses them: a
 * rename moves a name and the node keeps its id; an open file keeps serving with no name left;
 * a hard link is one node with several names; lookup takes a reference, forget gives it back,
 * and what no one holds is a bounded cache. In-process, without root or FUSE.
 */
import { constants as fsc, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dir, file, hardlink } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import { errnoOf, UnionHarness } from "../testing/union-harness.js";

describe("names move, nodes stay", () => {
  const scratch = useScratch("unionfs-inodes-");

  it("rename keeps the node and every node below it, with their ids and st_ino", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("d/sub/f", "lower f"), dir("other")]] });
    const d = h.node("d");
    const f = h.node("d/sub/f");
    const ino = h.stat("d/sub/f").ino;
    h.mv("d", "other/e");
    expect(h.fs.node(d.id)).toBe(d);
    expect(h.fs.node(f.id)).toBe(f);
    expect([d.path, f.path]).toEqual(["other/e", "other/e/sub/f"]);
    expect(h.node("other/e/sub/f")).toBe(f);
    expect(h.fs.getattr(f).ino).toBe(ino);
    expect(h.readText("other/e/sub/f")).toBe("lower f");
    expect(h.lookup("d")).toBeNull();
  });

  it("rename over a name: the replaced node has no name, the moved one takes it", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("a", "a"), file("b", "b")]] });
    const a = h.node("a");
    const b = h.node("b");
    const bOpen = h.openFile("b", fsc.O_RDONLY);
    h.mv("a", "b");
    expect(h.node("b")).toBe(a);
    expect(b.links).toEqual([]);
    expect(h.fs.node(b.id)).toBe(b);
    expect(bOpen.read().toString()).toBe("b");
    bOpen.close();
    expect(errnoOf(() => h.fs.node(b.id))).toBe("ESTALE");
  });

  it("RENAME_EXCHANGE swaps the names of two nodes", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("x/f", "f"), dir("y")]] });
    const x = h.node("x");
    const y = h.node("y");
    h.mv("x", "y", 2 /* RENAME_EXCHANGE */);
    expect([h.node("x"), h.node("y")]).toEqual([y, x]);
    expect(h.readText("y/f")).toBe("f");
  });

  it("an unlinked file open for writing keeps its node: fstat, fchmod, ftruncate, read and write", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower data")]] });
    const opened = h.openFile("f", fsc.O_RDWR);
    const node = h.node("f");
    h.rm("f");
    expect(node.links).toEqual([]);
    expect(h.fs.node(node.id)).toBe(node);
    opened.chmod(0o600);
    opened.truncate(5);
    opened.write("L", 0);
    expect(Number(opened.stat().mode) & 0o777).toBe(0o600);
    expect(opened.read().toString()).toBe("Lower");
    expect(h.list("")).toEqual([]);
    opened.close();
    expect(errnoOf(() => h.fs.node(node.id))).toBe("ESTALE");
  });

  it("an unlinked file open for reading from below cannot change mode (no name to copy it up to)", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower data")]] });
    const opened = h.openFile("f", fsc.O_RDONLY);
    h.rm("f");
    expect(errnoOf(() => opened.chmod(0o600))).toBe("ESTALE");
    expect(opened.read().toString()).toBe("lower data");
  });
});

describe("hard links are one node", () => {
  const scratch = useScratch("unionfs-inodes-");

  it("every name of a lower hard-linked file leads to one node; changes show through all at once", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("a", "one"), hardlink("d/b", "a"), hardlink("c", "a")]],
    });
    const node = h.node("a");
    expect([h.node("d/b"), h.node("c")]).toEqual([node, node]);
    expect(node.links.map((l) => l.name).sort()).toEqual(["a", "b", "c"]);
    h.writeAt("d/b", "+two", 3);
    h.chmod("c", 0o600);
    for (const name of ["a", "d/b", "c"]) {
      const st = h.stat(name);
      expect([h.readText(name), Number(st.mode) & 0o777, st.nlink]).toEqual(["one+two", 0o600, 3]);
    }
    h.rm("a");
    expect(node.links.map((l) => l.name).sort()).toEqual(["b", "c"]);
    expect([h.stat("c").nlink, h.stat("d/b").nlink]).toEqual([2, 2]);
  });

  it("link(2) gives the source's node a second name", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "data")]] });
    const node = h.node("f");
    h.ln("f", "g");
    expect(h.node("g")).toBe(node);
    h.writeAt("g", "D", 0);
    expect([h.readText("f"), h.stat("f").nlink, h.stat("g").nlink]).toEqual(["Data", 2, 2]);
  });

  // a node made from the upper name knows no lower object; the lower-only name brings it
  it("after a remount, a copied-up hard link's lower-only name can be removed", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("a", "one"), hardlink("b", "a")]] });
    h.writeAt("a", "X", 0); // copies a up into the index; b stays lower-only
    const again = await h.remount();
    expect(again.readText("a")).toBe("Xne");
    expect(errnoOf(() => again.rm("b"))).toBe("OK");
    expect([again.list(""), again.stat("a").nlink]).toEqual([["a"], 1]);
  });

  it("after a remount, a copied-up hard link's lower-only name can be written once the upper name is gone", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("a", "one"), hardlink("b", "a")]] });
    h.writeAt("a", "X", 0);
    const again = await h.remount();
    again.stat("a");
    again.stat("b");
    again.rm("a");
    expect(errnoOf(() => again.writeAt("b", "Y", 1))).toBe("OK");
    expect([again.readText("b"), again.stat("b").nlink]).toEqual(["XYe", 1]);
  });

  it("names of upper hard links found apart join one node", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[]],
      upper: [file("u1", "u"), hardlink("u2", "u1")],
    });
    expect(h.node("u2")).toBe(h.node("u1"));
  });
});

describe("lookup counts and forget", () => {
  const scratch = useScratch("unionfs-inodes-");

  /** 100 directories of 1000 files each, written straight into the lower */
  /** Files enough that a table keeping them would be far above its bound (64 cached nodes). */
  const DIRS = 20;

  function bigLower(root: string): void {
    for (let d = 0; d < DIRS; d++) {
      const path = join(root, `d${d}`);
      mkdirSync(path, { recursive: true });
      for (let f = 0; f < 1000; f++) writeFileSync(join(path, `f${f}`), "");
    }
  }

  // no time limit: only the table's size is asserted, and a loaded machine may take minutes
  it("a walk of 20k lower files that forgets what it looked up leaves the table near its start size", {
    timeout: 0,
  }, async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[]],
      prepare: (paths) => bigLower(paths.lowers[0] as string),
      options: { whiteout: "file", cachedNodes: 0 },
    });
    const { fs } = h;
    const start = fs.table.size;
    let seen = 0;
    let largest = 0;
    for (const dirEntry of fs.readdir(fs.table.root).slice(2)) {
      const d = fs.lookup(fs.table.root, dirEntry.name);
      if (d === null) throw new Error(`${dirEntry.name} vanished`);
      const dh = fs.opendir(d);
      for (const entry of fs.readdirAt(dh, 0).slice(2)) {
        const f = fs.lookup(d, entry.name);
        if (f === null) throw new Error(`${entry.name} vanished`);
        fs.getattr(f);
        fs.forget(f.id, 1);
        seen += 1;
      }
      fs.releasedir(dh);
      fs.forget(d.id, 1);
      largest = Math.max(largest, fs.table.size);
    }
    expect(seen).toBe(DIRS * 1000);
    // what no one holds is a cache of at most 64 nodes (the floor) when asked to keep none,
    // plus the directory those cached names are in
    expect(largest).toBeLessThanOrEqual(start + 64 + 2);
    expect(fs.table.size).toBeLessThanOrEqual(start + 64 + 1);
  });

  it("nodes the kernel still holds stay; forgetting them lets them go; they come back with their st_ino", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [Array.from({ length: 200 }, (_, i) => file(`f${i}`, String(i)))],
      options: { whiteout: "file", cachedNodes: 0 },
    });
    const { fs } = h;
    const held = Array.from({ length: 200 }, (_, i) => fs.lookup(fs.table.root, `f${i}`));
    expect(fs.table.size).toBe(201);
    const inos = held.map((n) => n?.ino);
    for (const node of held) if (node !== null) fs.forget(node.id, 1);
    expect(fs.table.size).toBeLessThanOrEqual(1 + 64);
    const again = Array.from({ length: 200 }, (_, i) => fs.find(fs.table.root, `f${i}`)?.ino);
    expect(again).toEqual(inos);
  });

  it("without references (a path-based transport) the nodes are a cache of the size asked for", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [Array.from({ length: 3000 }, (_, i) => file(`f${i}`, ""))],
      options: { whiteout: "file", cachedNodes: 1000 },
    });
    for (let i = 0; i < 3000; i++) h.stat(`f${i}`);
    expect(h.fs.table.size).toBe(1 + 1000);
  });
});
