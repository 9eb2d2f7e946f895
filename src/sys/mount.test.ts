import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MNT_DETACH, mount, umount2 } from "./mount.js";

const isRoot = process.getuid?.() === 0;
let dir: string;
let mounted: string[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-mount-"));
});
afterEach(() => {
  for (const target of mounted.reverse()) {
    try {
      umount2(target, MNT_DETACH);
    } catch {
      // already unmounted by the test
    }
  }
  mounted = [];
  rmSync(dir, { recursive: true, force: true });
});

function isMounted(target: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[1] === target);
}

describe("mount / umount2", () => {
  it("umount2 of a directory that is not a mount point fails (EINVAL, or EPERM unprivileged)", () => {
    expect(() => umount2(dir, 0)).toThrow(expect.objectContaining({ code: isRoot ? "EINVAL" : "EPERM" }));
  });

  it.skipIf(!isRoot)("mounts a tmpfs and unmounts it (root)", () => {
    mounted.push(dir);
    mount("unionfs-test", dir, "tmpfs", 0, "size=1m,mode=0755");
    expect(isMounted(dir)).toBe(true);
    writeFileSync(join(dir, "on-tmpfs"), "x");
    umount2(dir, 0);
    expect(isMounted(dir)).toBe(false);
    expect(existsSync(join(dir, "on-tmpfs"))).toBe(false);
  });

  it.skipIf(!isRoot)("reports the errno of a bad mount (root)", () => {
    expect(() => mount("none", join(dir, "missing"), "tmpfs", 0, null)).toThrow(
      expect.objectContaining({ code: "ENOENT", syscall: "mount" }),
    );
  });
});
