/**
 * Read-side operations on a read-only union, each run on kernel overlayfs and on unionfs over
 * the same layers and compared: name and path length limits, file content at any offset,
 * readlink, xattr privacy, statfs and access(2), and the sample layers in testdata/sample.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { constants as fsc } from "node:fs";
import { access, lstat, open, readdir, readFile, readlink, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { errorCode } from "../errors.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { mountBoth, snapshotBoth } from "../testing/differential.js";
import { dir, file, nativeCopy, symlink, xattr } from "../testing/fixture.js";
import { mountOverlay, mountUnionfs } from "../testing/mounts.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { useScratch } from "../testing/scratch.js";
import { IGNORED } from "../testing/snapshot.js";
import { selectedTransports } from "../testing/transports.js";

const run = promisify(execFile);

/** "OK: <value>" or the errno code: one step's outcome, comparable across mounts. */
async function outcome(step: () => Promise<unknown>): Promise<string> {
  try {
    const value = await step();
    return value === undefined ? "OK" : `OK: ${typeof value === "string" ? value : JSON.stringify(value)}`;
  } catch (e) {
    return errorCode(e) ?? String(e);
  }
}

/** Deterministic bytes (xorshift), so a failure can be reproduced. */
function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

for (const transport of selectedTransports()) {
  describeAsRoot(`read operations, ${transport}: kernel overlayfs vs unionfs`, () => {
    readOpsTests(transport);
  });
}

function readOpsTests(transport: string): void {
  const scratch = useScratch();

  it("a 256-byte name is ENAMETOOLONG for every operation, as in the kernel", async () => {
    const m = await mountBoth(scratch(), [[file("a", "x"), dir("d")], [file("d/f")]], { transport });
    const steps = (mnt: string) => {
      const n256 = join(mnt, "n".repeat(256));
      return [
        () => lstat(n256),
        () => lstat(join(mnt, "d", "é".repeat(128))),
        () => open(n256, "r").then((h) => h.close()),
        () => readlink(n256),
        () => access(n256),
        () => readdir(n256),
        async () => lgetxattr(n256, "user.x"),
        () => lstat(join(mnt, "x".repeat(1024))),
        () => lstat(join(mnt, "x".repeat(1025))),
        () => lstat(join(mnt, "d", "m".repeat(251))),
      ];
    };
    const kernel = await Promise.all(steps(m.kernel.mountpoint).map(outcome));
    const unionfs = await Promise.all(steps(m.unionfs.mountpoint).map(outcome));
    expect(unionfs).toEqual(kernel);
    expect(unionfs).toEqual([...Array(9).fill("ENAMETOOLONG"), "ENOENT"]);
  });

  it("a path of about 4000 bytes works for stat, readdir, read and readlink", async () => {
    const s = scratch();
    const parts = Array.from({ length: 15 }, (_, i) => `${String(i).padStart(2, "0")}${"p".repeat(248)}`);
    const deep = parts.join("/");
    const leaf = `${deep}/${"f".repeat(220)}`;
    expect(Buffer.byteLength(leaf)).toBeGreaterThan(3980);
    expect(Buffer.byteLength(s.path("umnt", leaf))).toBeLessThan(4095);
    const m = await mountBoth(
      s,
      [
        [dir(parts.slice(0, 8).join("/")), symlink(`${deep}/link`, "f".repeat(220))],
        [file(leaf, "at the bottom of a long path")],
      ],
      { transport },
    );
    const r = await snapshotBoth(m);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    const mnt = m.unionfs.mountpoint;
    expect(await readFile(join(mnt, leaf), "utf8")).toBe("at the bottom of a long path");
    expect(await readFile(join(mnt, deep, "link"), "utf8")).toBe("at the bottom of a long path");
    expect((await stat(join(mnt, leaf))).ino).toBe((await stat(join(m.kernel.mountpoint, leaf))).ino);
  });

  it("objects deeper than PATH_MAX, reached by relative lookups", async () => {
    const s = scratch();
    const part = "c".repeat(250);
    const deep = Array.from({ length: 20 }, () => part).join("/");
    const l0 = s.mkdir("l0");
    const l1 = s.mkdir("l1");
    // deeper than Node's absolute paths allow: build it with relative steps in a child
    const py = `import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(20):\n  os.mkdir("${part}"); os.chdir("${part}")\nopen("leaf","w").write("deep")\n`;
    await run("python3", ["-c", py, l1]);
    const kernel = await mountOverlay(s, { lowers: [l0, l1] }, s.mkdir("kmnt"));
    const unionfs = await mountUnionfs(s, { lowers: [l0, l1] }, s.mkdir("umnt"), { transport });
    const read = `import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(20): os.chdir("${part}")\nprint(open("leaf").read())\n`;
    expect(deep.length).toBeGreaterThan(5000);
    expect((await run("python3", ["-c", read, kernel.mountpoint])).stdout).toBe("deep\n");
    expect((await run("python3", ["-c", read, unionfs.mountpoint])).stdout).toBe("deep\n");
  });

  it("file content matches at every offset: large, sparse, empty and shadowed files", async () => {
    const big = pseudoRandom(1024 * 1024 + 7, 42);
    const s = scratch();
    const m = await mountBoth(
      s,
      [
        [file("shadowed", "top copy"), file("empty")],
        [file("big", big), file("shadowed", "bottom copy, longer than the top one"), file("sparse")],
      ],
      { transport },
    );
    // a sparse file: 8 MiB with data only at 4 MiB; made after apply() through the layer itself
    const sparse = await open(join(m.unionfsLayers[1] ?? "", "sparse"), "r+");
    await sparse.write(Buffer.from("data in the middle"), 0, 18, 4 * 1024 * 1024);
    await sparse.truncate(8 * 1024 * 1024);
    await sparse.close();
    const offsets = [0, 1, 4095, 4096, 131071, 131072, 131073, 1048576, 1048583, 4194300, 8388607, 2 ** 31];
    const lengths = [1, 4096, 200_000];
    const reads = async (mnt: string) => {
      const out: string[] = [];
      for (const name of ["big", "sparse", "empty", "shadowed"]) {
        const h = await open(join(mnt, name), "r");
        try {
          for (const off of offsets) {
            for (const len of lengths) {
              const buf = Buffer.alloc(len);
              const { bytesRead } = await h.read(buf, 0, len, off);
              out.push(`${name}@${off}+${len}: ${bytesRead} ${sha(buf.subarray(0, bytesRead))}`);
            }
          }
        } finally {
          await h.close();
        }
        out.push(`${name}: ${sha(await readFile(join(mnt, name)))}`);
      }
      return out;
    };
    const kernel = await reads(m.kernel.mountpoint);
    const unionfs = await reads(m.unionfs.mountpoint);
    expect(unionfs).toEqual(kernel);
    expect(unionfs).toContain(`big: ${sha(big)}`);
    expect(unionfs).toContain(`shadowed: ${sha(Buffer.from("top copy"))}`);
    expect((await stat(join(m.unionfs.mountpoint, "sparse"))).blocks).toBeLessThan(64);
  });

  it("readlink returns every target byte for byte", async () => {
    const targets = {
      relative: "dir/file",
      absolute: "/etc/hostname",
      dangling: "no/such/thing",
      parent: "..",
      odd: " spaced\nnew line\ttab ünïcödé 🦄",
      long1000: "x/".repeat(500),
      max4095: "t".repeat(4095),
    };
    const m = await mountBoth(
      scratch(),
      [
        [symlink("relative", targets.relative), symlink("odd", targets.odd)],
        Object.entries(targets).map(([name, target]) => symlink(name, target)),
      ],
      { transport },
    );
    const links = async (mnt: string) =>
      Promise.all(Object.keys(targets).map((name) => outcome(() => readlink(join(mnt, name)))));
    const kernel = await links(m.kernel.mountpoint);
    expect(await links(m.unionfs.mountpoint)).toEqual(kernel);
    expect(kernel).toEqual(Object.values(targets).map((t) => `OK: ${t}`));
  });

  it("xattrs: listxattr and getxattr hide trusted.overlay.* and user.overlay.*", async () => {
    const big = "v".repeat(3000);
    const m = await mountBoth(
      scratch(),
      [
        [
          file("f", "x"),
          xattr("f", "user.visible", "yes"),
          xattr("f", "trusted.visible", "root only"),
          xattr("f", "user.big", big),
          xattr("f", "trusted.overlay.origin", "not a real handle"),
          xattr("f", "trusted.overlay.foo", "private"),
          xattr("f", "user.overlay.bar", "private too"),
          dir("d"),
          xattr("d", "trusted.overlay.opaque", "y"),
          xattr("d", "user.overlay.redirect", "/elsewhere"),
          xattr("d", "user.on-dir", "dir value"),
        ],
        [file("d/hidden")],
      ],
      { transport },
    );
    const hidden = ["trusted.overlay.origin", "trusted.overlay.foo", "user.overlay.bar", "user.overlay.opaque"];
    const view = (mnt: string) => ({
      f: llistxattr(join(mnt, "f")).sort(),
      d: llistxattr(join(mnt, "d")).sort(),
      values: ["user.visible", "trusted.visible", "user.big"].map((n) => lgetxattr(join(mnt, "f"), n)?.toString()),
      dirValue: lgetxattr(join(mnt, "d"), "user.on-dir")?.toString(),
      private: [...hidden, "trusted.overlay.opaque"].map((n) => lgetxattr(join(mnt, "f"), n) ?? "ENODATA"),
      privateOnDir: ["trusted.overlay.opaque", "user.overlay.redirect"].map((n) => lgetxattr(join(mnt, "d"), n)),
    });
    const unionfs = view(m.unionfs.mountpoint);
    expect(unionfs).toEqual({
      f: ["trusted.visible", "user.big", "user.visible"],
      d: ["user.on-dir"],
      values: ["yes", "root only", big],
      dirValue: "dir value",
      private: Array(5).fill("ENODATA"),
      privateOnDir: [null, null],
    });
    // The kernel (no `userxattr`) hides only its own trusted.overlay.* and shows user.overlay.*;
    // unionfs reads both namespaces, so it hides both. Everything else must agree.
    const kernel = view(m.kernel.mountpoint);
    const withoutUserOverlay = (names: string[]) => names.filter((n) => !n.startsWith("user.overlay."));
    expect({ ...unionfs, privateOnDir: [] }).toEqual({
      ...kernel,
      f: withoutUserOverlay(kernel.f),
      d: withoutUserOverlay(kernel.d),
      private: kernel.private.map((v, i) => (hidden[i]?.startsWith("user.overlay.") ? "ENODATA" : v)),
      privateOnDir: [],
    });
  });

  it("statfs reports the topmost layer's filesystem (stat -f)", async () => {
    const m = await mountBoth(scratch(), [[file("a")], [file("b")]], { transport });
    // %s block size, %S fundamental block size, %b total blocks, %c total inodes, %l max name
    // length; %f/%d free blocks/inodes within a tolerance: IGNORED.statfsFreeCounts
    const statf = async (path: string) => {
      const { stdout } = await run("stat", ["-f", "-c", "%s %S %b %c %l %f %d", path]);
      const [bsize, frsize, blocks, files, namemax, bfree, ffree] = stdout.trim().split(" ").map(Number);
      return { fixed: { bsize, frsize, blocks, files, namemax }, bfree: bfree ?? 0, ffree: ffree ?? 0 };
    };
    const layer = await statf(m.unionfsLayers[0] ?? "");
    const kernel = await statf(m.kernel.mountpoint);
    const unionfs = await statf(m.unionfs.mountpoint);
    expect(unionfs.fixed).toEqual(kernel.fixed);
    expect(unionfs.fixed).toEqual({ ...layer.fixed, namemax: 255 });
    expect(Math.abs(unionfs.bfree - layer.bfree)).toBeLessThan((layer.fixed.blocks ?? 0) / 100);
    expect(Math.abs(unionfs.ffree - layer.ffree)).toBeLessThan(10_000);
    expect(IGNORED.statfsFreeCounts).toBeDefined();
  });

  it("access(2) answers as the kernel's does, for root and for an unprivileged user", async () => {
    const m = await mountBoth(
      scratch(),
      [
        [
          file("r644", "x", 0o644),
          file("r600", "x", 0o600),
          file("x755", "x", 0o755),
          file("n000", "x", 0o000),
          file("mine", "x", { mode: 0o600, uid: 1000, gid: 1000 }),
          dir("d700", 0o700),
          file("d700/f", "x", 0o644),
          dir("d711", 0o711),
          file("d711/f", "x", 0o644),
          symlink("link", "r600"),
          symlink("dangling", "nowhere"),
        ],
        [file("lower644", "x", 0o644), dir("d755", 0o755)],
      ],
      { transport },
    );
    const paths = ["", "r644", "r600", "x755", "n000", "mine", "d700", "d700/f", "d711", "d711/f", "link"];
    paths.push("dangling", "missing", "lower644", "d755");
    const modes = { F: fsc.F_OK, R: fsc.R_OK, W: fsc.W_OK, X: fsc.X_OK, RWX: fsc.R_OK | fsc.W_OK | fsc.X_OK };
    const asRoot = async (mnt: string) => {
      const out: string[] = [];
      for (const p of paths) {
        for (const [name, mode] of Object.entries(modes)) {
          out.push(`${p || "/"} ${name}: ${await outcome(() => access(join(mnt, p), mode))}`);
        }
      }
      return out;
    };
    // access(2) in a child that has dropped to uid/gid 1000 (os.access would hide the errno)
    const py = [
      "import ctypes,errno,json,os,sys",
      "libc=ctypes.CDLL(None,use_errno=True)",
      "os.setgroups([]); os.setgid(1000); os.setuid(1000)",
      "out=[]",
      "for p in json.loads(sys.argv[2]):",
      "  for name,mode in json.loads(sys.argv[3]).items():",
      "    r=libc.access(os.fsencode(os.path.join(sys.argv[1],p)),mode)",
      "    out.append(f'{p or \"/\"} {name}: '+('OK' if r==0 else errno.errorcode[ctypes.get_errno()]))",
      "print(json.dumps(out))",
    ].join("\n");
    const asUser = async (mnt: string) =>
      JSON.parse((await run("python3", ["-c", py, mnt, JSON.stringify(paths), JSON.stringify(modes)])).stdout);
    const kernelRoot = await asRoot(m.kernel.mountpoint);
    expect(await asRoot(m.unionfs.mountpoint)).toEqual(kernelRoot);
    expect(kernelRoot).toContain("r644 W: EROFS");
    expect(kernelRoot).toContain("r644 X: EACCES");
    const kernelUser = await asUser(m.kernel.mountpoint);
    expect(await asUser(m.unionfs.mountpoint)).toEqual(kernelUser);
    expect(kernelUser).toContain("r600 R: EACCES");
    expect(kernelUser).toContain("mine R: OK");
  });

  it("the sample layers in testdata/sample", async () => {
    const s = scratch();
    const sample = resolve(import.meta.dirname, "../../testdata/sample");
    const unionfsLayers = [join(sample, "app"), join(sample, "base")];
    // The kernel reads neither `.wh.` files nor `.wh..wh..opq`: it gets a copy in its encodings.
    const kernelLayers = unionfsLayers.map((l, i) => nativeCopy(l, s.path(`k${i}`)));
    const kernel = await mountOverlay(s, { lowers: kernelLayers }, s.mkdir("kmnt"));
    const unionfs = await mountUnionfs(s, { lowers: unionfsLayers }, s.mkdir("umnt"), { transport });
    const r = await snapshotBoth({ kernel, unionfs, kernelLayers, unionfsLayers, shared: false });
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual([
      "",
      "app",
      "app/config.json",
      "app/helper.txt",
      "app/run.sh",
      "etc",
      "etc/hostname",
      "etc/os-release",
      "etc/run-app",
      "usr",
      "usr/share",
      "usr/share/doc",
      "usr/share/doc/unionfs",
      "usr/share/doc/unionfs/README",
      "var",
      "var/cache",
      "var/cache/new.txt",
    ]);
    expect(await readFile(join(unionfs.mountpoint, "app/config.json"))).toEqual(
      await readFile(join(sample, "app/app/config.json")),
    );
  });
}

function sha(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex").slice(0, 16);
}
