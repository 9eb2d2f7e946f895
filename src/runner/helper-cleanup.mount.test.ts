/**
 * The helper's own removal of a run's trees (`--cleanup`, native/unionfs-run.c), which a
 * handed-over run relies on: run directly, with no steps and `/bin/true` as the command.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MNT_DETACH, mount, umount2 } from "../sys/mount.js";
import { runCommand } from "../testing/cli-run.js";
import { useScratch } from "../testing/scratch.js";
import { HELPER } from "./run.js";

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

describe.skipIf(!IS_ROOT || !existsSync(HELPER))("unionfs-run --cleanup", () => {
  const scratch = useScratch("unionfs-helper-cleanup-");

  it("removes a tree as its unprivileged owner, mode-000 directories too, never through a symlink", async () => {
    const s = scratch();
    chmodSync(s.root, 0o777);
    const outside = s.mkdir("outside");
    writeFileSync(join(outside, "f"), "keep\n");
    const tree = s.mkdir("tree");
    mkdirSync(join(tree, "work/work"), { recursive: true });
    writeFileSync(join(tree, "work/work/leftover"), "x");
    symlinkSync(outside, join(tree, "link"));
    for (const p of ["", "work", "work/work", "work/work/leftover"]) chownSync(join(tree, p), NOBODY, NOBODY);
    // what a rootless overlay leaves: its work/work at mode 000, owned by the caller
    chmodSync(join(tree, "work/work"), 0o000);
    const r = await runCommand(
      HELPER,
      ["--ns", "user,pid", "--map-root", "--handover", "--cleanup", tree, "--", "/bin/true"],
      {
        user: { uid: NOBODY, gid: NOBODY },
      },
    );
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, "f"), "utf8")).toBe("keep\n");
  });

  it("leaves a tree with something mounted below it in place, and says so", async () => {
    const s = scratch();
    const tree = s.mkdir("tree");
    const mounted = s.mkdir("tree/sub/mnt");
    mount("tmpfs", mounted, "tmpfs", 0, "size=1m");
    s.onCleanup(() => umount2(mounted, MNT_DETACH));
    writeFileSync(join(mounted, "f"), "on the mount\n");
    const r = await runCommand(HELPER, ["--ns", "pid", "--handover", "--cleanup", tree, "--", "/bin/true"]);
    expect(r.code).toBe(0);
    expect(r.stderrLines).toEqual([`unionfs: left ${tree} in place: something is mounted on or below it`]);
    expect(readFileSync(join(mounted, "f"), "utf8")).toBe("on the mount\n");
  });
});
