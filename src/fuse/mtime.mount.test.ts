/**
 * The utimens fix (tools/patch-fuse-native.mjs): the published binding passes atime where mtime
 * belongs, so without the patch no tool can set an mtime through the mount. These run the tools
 * users run: touch -m -d, cp -p, tar extraction, and touch with UTIME_NOW / UTIME_OMIT.
 */
import { execFileSync } from "node:child_process";
import { lstatSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apply, dir, file } from "../testing/fixture.js";
import { mountUnionfs } from "../testing/mounts.js";
import { useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

const SECONDS_2001 = Date.UTC(2001, 0, 2, 3, 4, 5) / 1000;

for (const transport of selectedTransports()) {
  describe(`mtimes set through the mount, ${transport}`, () => {
    mtimeTests(transport);
  });
}

function mtimeTests(transport: string): void {
  const scratch = useScratch();

  async function writableMount() {
    const s = scratch();
    const lower = s.mkdir("lower");
    await apply(lower, [dir("d"), file("d/lower.txt", "from below", { mtime: 1_000_000_000 })]);
    const mnt = s.mkdir("mnt");
    await mountUnionfs(s, { lowers: [lower], upper: s.mkdir("upper"), work: s.mkdir("work") }, mnt, { transport });
    return mnt;
  }

  it("touch -m -d sets the mtime and leaves the atime alone", async () => {
    const mnt = await writableMount();
    const path = join(mnt, "d/lower.txt");
    const atimeBefore = lstatSync(path).atimeMs;
    execFileSync("touch", ["-m", "-d", "2001-01-02T03:04:05Z", path]);
    const st = lstatSync(path);
    expect(st.mtimeMs).toBe(SECONDS_2001 * 1000);
    expect(st.atimeMs).toBe(atimeBefore);
  });

  it("touch -a -d sets the atime and leaves the mtime alone (UTIME_OMIT)", async () => {
    const mnt = await writableMount();
    const path = join(mnt, "d/lower.txt");
    execFileSync("touch", ["-a", "-d", "2001-01-02T03:04:05Z", path]);
    const st = lstatSync(path);
    expect(st.atimeMs).toBe(SECONDS_2001 * 1000);
    expect(st.mtimeMs).toBe(1_000_000_000 * 1000);
  });

  it("plain touch sets both to now (UTIME_NOW)", async () => {
    const mnt = await writableMount();
    const path = join(mnt, "d/lower.txt");
    const before = Date.now();
    execFileSync("touch", [path]);
    const st = lstatSync(path);
    expect(st.mtimeMs).toBeGreaterThanOrEqual(before - 1000);
    expect(st.mtimeMs).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("cp -p keeps the source's mtime", async () => {
    const mnt = await writableMount();
    const source = scratch().path("source.txt");
    writeFileSync(source, "payload");
    execFileSync("touch", ["-m", "-d", "2001-01-02T03:04:05Z", source]);
    execFileSync("cp", ["-p", source, join(mnt, "copied.txt")]);
    expect(lstatSync(join(mnt, "copied.txt")).mtimeMs).toBe(SECONDS_2001 * 1000);
  });

  it("tar extraction keeps mtimes of files, directories and symlinks", async () => {
    const s = scratch();
    const mnt = await writableMount();
    const src = s.mkdir("tree");
    await apply(src, [dir("t", { mtime: 1_100_000_000 }), file("t/a", "a", { mtime: 1_200_000_000 })]);
    execFileSync("ln", ["-s", "a", join(src, "t/link")]);
    execFileSync("touch", ["-h", "-m", "-d", "@1300000000", join(src, "t/link")]);
    execFileSync("touch", ["-m", "-d", "@1100000000", join(src, "t")]);
    const archive = s.path("tree.tar");
    execFileSync("tar", ["-C", src, "-cf", archive, "t"]);
    execFileSync("tar", ["-C", mnt, "-xf", archive]);
    expect(lstatSync(join(mnt, "t/a")).mtimeMs).toBe(1_200_000_000_000);
    expect(lstatSync(join(mnt, "t/link")).mtimeMs).toBe(1_300_000_000_000);
    expect(lstatSync(join(mnt, "t")).mtimeMs).toBe(1_100_000_000_000);
  });
}
