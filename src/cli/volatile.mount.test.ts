/**
 * `--volatile` (overlayfs's `volatile`): copy-ups and fsync skip their syncs, and the work dir
 * is marked in the kernel's layout so that neither the kernel nor unionfs mounts it again
 * until someone who knows there was no crash removes the mark. The daemon runs in a child.
 * Runs in each filesystem layout (src/testing/fs-layout.ts): a copy-up across filesystems takes
 * another path to its data; and once per transport (src/testing/transports.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { mountAt, runCli, runCommand } from "../testing/cli-run.js";
import { type FsLayout, LayoutDirs, selectedLayouts } from "../testing/fs-layout.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports, transportArgs } from "../testing/transports.js";

for (const transport of selectedTransports()) {
  for (const layout of selectedLayouts()) {
    describeAsRoot(`unionfs mount --volatile, ${transport}, ${layout.name}`, () => {
      volatileTests(transport, layout);
    });
  }
}

function volatileTests(transport: string, layout: FsLayout): void {
  let t: Scratch;
  let lower: string;
  let upper: string;
  let work: string;
  let mnt: string;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
    const dirs = new LayoutDirs(t, layout);
    lower = dirs.lower("lower");
    upper = dirs.upper("upper");
    work = dirs.upper("work");
    mnt = t.mkdir("mnt");
    writeFileSync(join(lower, "f"), "lower\n");
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const marker = () => join(work, "work", "incompat", "volatile", "dirty");
  const mountArgs = (...extra: string[]) => [
    "mount",
    ...transportArgs(transport),
    "-w",
    work,
    ...extra,
    lower,
    upper,
    mnt,
  ];

  async function unmount(): Promise<void> {
    expect(await runCli(["umount", mnt], { env: t.env })).toMatchObject({ code: 0 });
  }

  it("copies up, answers fsync, and marks the work dir as overlayfs does", async () => {
    expect(await runCli(mountArgs("--volatile"), { env: t.env })).toMatchObject({ code: 0, stderr: "" });
    expect(existsSync(marker())).toBe(true);
    // dd's conv=fsync sends FSYNC after the write: answered without error
    const dd = await runCommand("dd", ["if=/dev/zero", `of=${join(mnt, "new")}`, "bs=4k", "count=4", "conv=fsync"]);
    expect(dd.code).toBe(0);
    writeFileSync(join(mnt, "f"), "changed\n", { flag: "a" });
    expect(readFileSync(join(mnt, "f"), "utf8")).toBe("lower\nchanged\n");
    await unmount();
    expect(readFileSync(join(upper, "f"), "utf8")).toBe("lower\nchanged\n");
    expect(readFileSync(join(lower, "f"), "utf8")).toBe("lower\n");
    expect(existsSync(marker()), "the mark outlives the mount, as the kernel's does").toBe(true);
  });

  it("a work dir a volatile mount used is refused, by unionfs and by the kernel, and kept", async () => {
    expect(await runCli(mountArgs("--volatile"), { env: t.env })).toMatchObject({ code: 0 });
    writeFileSync(join(mnt, "kept"), "upper data\n");
    await unmount();

    for (const extra of [[], ["--volatile"]]) {
      const again = await runCli(mountArgs(...extra), { env: t.env });
      expect(again.code).not.toBe(0);
      expect(again.stderrLines).toHaveLength(1);
      expect(again.stderrLines[0]).toMatch(/^unionfs: work directory .* was mounted with 'volatile'/);
      expect(mountAt(mnt)).toBeNull();
    }
    const kernel = await runCommand("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      mnt,
    ]);
    expect(kernel.code, "the kernel refuses it too").not.toBe(0);
    expect(mountAt(mnt)).toBeNull();
    expect(readFileSync(join(upper, "kept"), "utf8")).toBe("upper data\n");
    expect(existsSync(marker())).toBe(true);

    // removing the mark is how a user who knows the mount ended cleanly reuses the dirs
    await runCommand("rm", ["-r", join(work, "work", "incompat")]);
    expect(await runCli(mountArgs(), { env: t.env })).toMatchObject({ code: 0, stderr: "" });
    expect(readFileSync(join(mnt, "kept"), "utf8")).toBe("upper data\n");
    await unmount();
  });

  it("refuses a work dir that a kernel volatile mount left, without clearing it", async () => {
    const opts = `lowerdir=${lower},upperdir=${upper},workdir=${work},volatile`;
    expect((await runCommand("mount", ["-t", "overlay", "overlay", "-o", opts, mnt])).code).toBe(0);
    writeFileSync(join(mnt, "kept"), "kernel upper\n");
    expect((await runCommand("umount", [mnt])).code).toBe(0);

    const result = await runCli(mountArgs(), { env: t.env });
    expect(result.code).not.toBe(0);
    expect(result.stderrLines).toEqual([expect.stringMatching(/was mounted with 'volatile'/)]);
    expect(readdirSync(join(work, "work", "incompat"))).toEqual(["volatile"]);
    expect(readFileSync(join(upper, "kept"), "utf8")).toBe("kernel upper\n");
  });

  it("refuses a work dir whose incompat mark it cannot read, and wipes nothing", async () => {
    mkdirSync(join(work, "work"));
    writeFileSync(join(work, "work", "incompat"), "not a directory\n");
    writeFileSync(join(work, "work", "leftover"), "kept\n");
    const result = await runCli(mountArgs(), { env: t.env });
    expect(result.code).not.toBe(0);
    expect(result.stderrLines).toEqual([expect.stringMatching(/^unionfs: cannot read .*incompat: ENOTDIR$/)]);
    expect(mountAt(mnt)).toBeNull();
    expect(readFileSync(join(work, "work", "leftover"), "utf8")).toBe("kept\n");
  });

  it("a mount without --volatile leaves no mark", async () => {
    expect(await runCli(mountArgs(), { env: t.env })).toMatchObject({ code: 0 });
    writeFileSync(join(mnt, "f"), "x", { flag: "a" });
    await unmount();
    expect(existsSync(join(work, "work", "incompat"))).toBe(false);
  });

  it("takes volatile in the fuse-overlayfs option form", async () => {
    const opts = `lowerdir=${lower},upperdir=${upper},workdir=${work},volatile`;
    const result = await runCli([...transportArgs(transport), "-o", opts, mnt], { env: t.env });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(existsSync(marker())).toBe(true);
    await unmount();
  });
}
