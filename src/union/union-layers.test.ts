/**
 * Layers are reached through directory fds opened when the stack is opened, never by walking
 * their paths again: depth is not bounded by PATH_MAX, and a mount (or anything else) that
 * later covers a layer's path does not change what the union reads. In-process.
 */
import { execFileSync } from "node:child_process";
import { constants as fsc, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MNT_DETACH, mount, umount2 } from "../sys/mount.js";
import { dir, file } from "../testing/fixture.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { useScratch } from "../testing/scratch.js";
import { errnoOf, UnionHarness } from "../testing/union-harness.js";
import { openStack } from "./layer.js";
import { UnionFs } from "./union-fs.js";

const PART = "d".repeat(250);
const DEPTH = 20;
const deep = (depth = DEPTH) => Array.from({ length: depth }, () => PART).join("/");

/** Runs python over a tree deeper than absolute paths reach: chdir one step at a time. */
function py(root: string, script: string): string {
  const prelude = `import os,sys\nos.chdir(sys.argv[1])\ndef down(n):\n  for _ in range(n): os.chdir("${PART}")\n`;
  return execFileSync("python3", ["-c", prelude + script, root], { encoding: "utf8" });
}

describe("objects deeper than PATH_MAX", () => {
  const scratch = useScratch("unionfs-layers-");

  const open = () =>
    UnionHarness.open(scratch(), {
      lowers: [[file("top", "t")], []],
      prepare: (paths) =>
        py(
          paths.lowers[1] as string,
          `for _ in range(${DEPTH}):\n  os.mkdir("${PART}"); os.chdir("${PART}")\nopen("leaf","w").write("deep")\nos.mkdir("sub"); open("sub/f","w").write("in sub")\n`,
        ),
    });

  it("are looked up, listed and read", async () => {
    const h = await open();
    expect(deep().length).toBeGreaterThan(5000);
    expect(h.readText(`${deep()}/leaf`)).toBe("deep");
    expect(h.list(deep())).toEqual(["leaf", "sub"]);
    expect(h.stat(`${deep()}/sub/f`).size).toBe(6n);
  });

  it("are copied up with their parent chain, written and created", async () => {
    const h = await open();
    h.writeAt(`${deep()}/leaf`, "DEEP", 0);
    h.writeFile(`${deep()}/new`, "made deep");
    expect(h.readText(`${deep()}/leaf`)).toBe("DEEP");
    expect(py(h.upper(), `down(${DEPTH})\nprint(open("leaf").read(), open("new").read())`)).toBe("DEEP made deep\n");
  });

  it("follow a deep directory that is renamed and removed", async () => {
    const h = await open();
    // an upper-only tree as deep, its top renamed once the fds below it are cached
    const upperDeep = (top: string) => `${top}/${deep(DEPTH - 1)}`;
    const mkdirs = (top: string) => {
      for (let i = 0; i < DEPTH; i++) h.mkdir(`${top}/${deep(i)}`.replace(/\/$/, ""));
    };
    mkdirs("a");
    h.writeFile(`${upperDeep("a")}/f`, "first");
    h.mv("a", "b");
    expect(h.readText(`${upperDeep("b")}/f`)).toBe("first");
    mkdirs("a");
    h.writeFile(`${upperDeep("a")}/f`, "second");
    expect(h.readText(`${upperDeep("b")}/f`)).toBe("first");
    expect(h.readText(`${upperDeep("a")}/f`)).toBe("second");
    h.rm(`${upperDeep("b")}/f`);
    expect(h.list(upperDeep("b"))).toEqual([]);
    expect(py(h.upper(), `os.chdir("a")\ndown(${DEPTH - 1})\nprint(open("f").read())`)).toBe("second\n");
  });

  it("a directory from below whose redirect the upper cannot store is not renamed (EXDEV)", async () => {
    const h = await open();
    expect(errnoOf(() => h.mv(`${deep()}/sub`, `${deep()}/moved`))).toBe("EXDEV");
    expect(h.list(deep())).toEqual(["leaf", "sub"]);
  });
});

describe("a layer whose path is not ASCII", () => {
  const scratch = useScratch("unionfs-layers-");

  it("is reached through its fd (byte names are appended to it), and read and written", async () => {
    const base = scratch().mkdir("caf\u00e9 \u2603");
    const [lower, upper, work] = ["l", "u", "w"].map((d) => join(base, d));
    for (const d of [lower, upper, work]) mkdirSync(d as string);
    writeFileSync(join(lower as string, "f"), "lower");
    const stack = await openStack({ lowers: [lower as string], upper, work });
    const fs = await UnionFs.create(stack, { whiteout: "file" });
    try {
      expect(stack.lowers[0]?.at).toMatch(/^\/proc\/self\/fd\/\d+\/\.$/);
      const node = fs.find(fs.table.root, "f");
      if (node === null) throw new Error("f not found");
      const fh = fs.open(node, fsc.O_RDWR);
      fs.write(fh, Buffer.from("L"), 1, 0);
      fs.release(fh);
      expect(readFileSync(join(upper as string, "f"), "utf8")).toBe("Lower");
    } finally {
      fs.close();
    }
  });
});

describeAsRoot("a layer below the mount point, covered once the stack is opened", () => {
  const scratch = useScratch("unionfs-layers-");

  it("is still read and written where it was opened", async () => {
    const s = scratch();
    const h = await UnionHarness.open(s, { lowers: [[file("a", "lower a"), dir("d")]], mountpoint: s.path() });
    const lower = h.lower(0);
    const upper = h.upper();
    for (const path of [lower, upper]) {
      mount("tmpfs", path, "tmpfs", 0, "size=1m");
      scratch().onCleanup(() => umount2(path, MNT_DETACH));
      writeFileSync(`${path}/cover`, "the covering mount");
      mkdirSync(`${path}/d`);
    }
    expect(h.list("")).toEqual(["a", "d"]);
    h.writeFile("d/new", "written");
    expect(h.readText("d/new")).toBe("written");
    expect(h.readText("a")).toBe("lower a");
    const upperFd = h.fs.stack.upper?.fd;
    expect(py(`/proc/${process.pid}/fd/${upperFd}`, `print(open("d/new").read())`)).toBe("written\n");
  });
});
