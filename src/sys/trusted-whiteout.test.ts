import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isHostAdmin } from "./privilege.js";
import { probeTrustedWhiteout } from "./trusted-whiteout.js";

const IS_ROOT = process.getuid?.() === 0;

function commandWorks(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

describe("probeTrustedWhiteout", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-privilege-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.runIf(isHostAdmin())("says yes for host root on a local filesystem, and leaves nothing behind", () => {
    expect(probeTrustedWhiteout(join(dir, "probe"))).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("says no where the device cannot be made", () => {
    expect(probeTrustedWhiteout(join(dir, "missing", "probe"))).toBe(false);
  });

  // Why the device alone is no answer: since Linux 5.8 anyone may make char 0/0.
  it.runIf(IS_ROOT && commandWorks("setfattr", ["--version"]))(
    "a plain user can make the whiteout device but not set the trusted xattr on it",
    () => {
      chmodSync(dir, 0o777);
      const path = join(dir, "wh");
      const script = `mknod ${path} c 0 0 && echo made; setfattr -n trusted.probe -v x ${path} && echo xattr; true`;
      const out = execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
      expect(out).not.toContain("xattr");
    },
  );
});
