/**
 * Layers on different filesystems (issue 14): a lower on one tmpfs, the upper and work dir on
 * another, as overlayfs is often used (a /tmp upper over read-only lowers elsewhere). Copy-up
 * must cross filesystems, an xattr the upper's filesystem refuses must not fail it, and st_ino
 * must be kernel overlayfs's xino=on number, stable across copy-up and remounts. The
 * differential suites run in this layout too; these are the cases they cannot express.
 */
import { appendFileSync, chmodSync, linkSync, lstatSync, readFileSync, renameSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { lgetxattr, lsetxattr } from "../sys/xattr.js";
import { apply, dir, file } from "../testing/fixture.js";
import { mountOverlaySync, mountUnionfs } from "../testing/mounts.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { type Scratch, useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

const KERNEL = ["redirect_dir=on", "index=on", "xino=on"];

/** The lower on one tmpfs, a kernel and a unionfs upper (with work dirs) on another. */
async function splitStack(s: Scratch, upperFsOptions: readonly string[] = []) {
  const lowerFs = s.mountTmpfs("lower-fs", "64m");
  const upperFs = s.mountTmpfs("upper-fs", "64m", upperFsOptions);
  const lower = join(lowerFs, "l");
  await apply(lowerFs, [
    dir("l"),
    file("l/f", "hi\n", 0o644),
    dir("l/d"),
    file("l/d/g", "x\n", 0o644),
    file("l/gone", "bye\n"),
  ]);
  const dirs = (name: string) => ({ upper: join(upperFs, `${name}-u`), work: join(upperFs, `${name}-w`) });
  const unionfs = dirs("unionfs");
  const kernel = dirs("kernel");
  await apply(upperFs, [dir("unionfs-u"), dir("unionfs-w"), dir("kernel-u"), dir("kernel-w")]);
  return { lower, unionfs, kernel, mnt: s.mkdir("mnt"), kmnt: s.mkdir("kmnt") };
}

/** The changes of the report, each a first modification of a lower object. */
function change(root: string): void {
  appendFileSync(join(root, "f"), "more\n");
  chmodSync(join(root, "d/g"), 0o600);
  truncateSync(join(root, "gone"), 1);
  linkSync(join(root, "d/g"), join(root, "g-link"));
  renameSync(join(root, "d"), join(root, "d2"));
}

const inos = (root: string, paths: readonly string[]) =>
  paths.map((p) => `${p}=${lstatSync(join(root, p), { bigint: true }).ino}`);

for (const transport of selectedTransports()) {
  describeAsRoot(`layers on different filesystems, ${transport}`, () => {
    crossFsTests(transport);
  });
}

function crossFsTests(transport: string): void {
  const scratch = useScratch();

  it("copies up across filesystems and numbers objects as overlayfs with xino=on, across remounts", async () => {
    const s = scratch();
    const st = await splitStack(s);
    const paths = ["", "f", "d2", "d2/g", "g-link", "gone"];
    const kernel = mountOverlaySync(s, { lowers: [st.lower], ...st.kernel }, st.kmnt, KERNEL);
    const unionfs = await mountUnionfs(s, { lowers: [st.lower], ...st.unionfs }, st.mnt, { transport });
    change(st.kmnt);
    change(st.mnt);
    for (const root of [st.kmnt, st.mnt]) {
      expect(readFileSync(join(root, "f"), "utf8")).toBe("hi\nmore\n");
      expect(readFileSync(join(root, "gone"), "utf8")).toBe("b");
      expect(lstatSync(join(root, "d2/g")).mode & 0o7777).toBe(0o600);
    }
    const kernelInos = inos(st.kmnt, paths.slice(1));
    expect(inos(st.mnt, paths.slice(1))).toEqual(kernelInos);
    // the lower's numbers carry the lower filesystem's id in the top bit (xino: 2 bits); Node
    // reads st_ino as signed
    expect(BigInt.asUintN(64, lstatSync(join(st.mnt, "f"), { bigint: true }).ino) >> 63n).toBe(1n);

    await unionfs.unmount();
    await kernel.unmount();
    await mountUnionfs(s, { lowers: [st.lower], ...st.unionfs }, st.mnt, { transport });
    expect(inos(st.mnt, paths.slice(1))).toEqual(kernelInos);
    // the kernel reads unionfs's upper the same way
    const again = s.mkdir("kmnt2");
    mountOverlaySync(s, { lowers: [st.lower], ...st.unionfs }, again, KERNEL);
    expect(readFileSync(join(again, "f"), "utf8")).toBe("hi\nmore\n");
    expect(inos(again, paths.slice(1))).toEqual(kernelInos);
  });

  it("skips an xattr the upper's filesystem refuses, with one log line, and copies up the rest", async () => {
    const s = scratch();
    // 16 inodes give the upper tmpfs 16 KiB for user xattrs (tmpfs counts them against its inodes)
    const st = await splitStack(s, ["nr_inodes=16"]);
    const big = Buffer.alloc(60_000, 0x61);
    lsetxattr(join(st.lower, "f"), "user.big", big);
    lsetxattr(join(st.lower, "f"), "user.small", Buffer.from("kept"));
    lsetxattr(join(st.lower, "d/g"), "user.big", big);
    await mountUnionfs(s, { lowers: [st.lower], ...st.unionfs }, st.mnt, { transport });
    appendFileSync(join(st.mnt, "f"), "more\n");
    chmodSync(join(st.mnt, "d/g"), 0o600);
    expect(readFileSync(join(st.mnt, "f"), "utf8")).toBe("hi\nmore\n");
    expect(lgetxattr(join(st.mnt, "f"), "user.small")?.toString()).toBe("kept");
    expect(lgetxattr(join(st.mnt, "f"), "user.big")).toBeNull();
    expect(lstatSync(join(st.mnt, "d/g")).mode & 0o7777).toBe(0o600);
    const log = readFileSync(s.path("unionfs.log"), "utf8");
    const lines = log.split("\n").filter((l) => l.includes("user.big"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/refuses xattr user\.big \(ENOSPC\)/);
  });
}
