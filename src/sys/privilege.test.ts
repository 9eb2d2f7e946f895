import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  CAP_CHOWN,
  CAP_SYS_ADMIN,
  hasCapability,
  isHostAdmin,
  isInitialUserNamespace,
  mayChown,
  mayMountDirectly,
  type Privilege,
  parseEffectiveCapabilities,
  readPrivilege,
} from "./privilege.js";

const ALL = (1n << 41n) - 1n;
const hostRoot: Privilege = { effective: ALL, initialUserNamespace: true };
const userNsRoot: Privilege = { effective: ALL, initialUserNamespace: false };
const plainUser: Privilege = { effective: 0n, initialUserNamespace: true };
const IS_ROOT = process.getuid?.() === 0;

function commandWorks(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

describe("parseEffectiveCapabilities", () => {
  it("reads CapEff as a bit set", () => {
    const status = "Name:\tnode\nCapPrm:\t000001ffffffffff\nCapEff:\t0000000000200001\nCapBnd:\t000001ffffffffff\n";
    const caps = parseEffectiveCapabilities(status);
    expect(caps).toBe(0x200001n);
    const p = { effective: caps, initialUserNamespace: true };
    expect([hasCapability(CAP_CHOWN, p), hasCapability(CAP_SYS_ADMIN, p), hasCapability(1, p)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it("is the empty set when the line is missing", () => {
    expect(parseEffectiveCapabilities("Name:\tx\n")).toBe(0n);
  });
});

describe("isInitialUserNamespace", () => {
  it("recognises the identity map of all ids, however it is padded", () => {
    expect(isInitialUserNamespace("         0          0 4294967295\n")).toBe(true);
  });

  it("is false for any other map", () => {
    expect(isInitialUserNamespace("         0       1000          1\n")).toBe(false);
    expect(isInitialUserNamespace("0 100000 65536\n")).toBe(false);
    expect(isInitialUserNamespace("")).toBe(false);
  });
});

describe("the questions", () => {
  it("root on the host may do everything", () => {
    expect([isHostAdmin(hostRoot), mayMountDirectly(hostRoot), mayChown(hostRoot)]).toEqual([true, true, true]);
  });

  it("root in a user namespace may mount and chown there, but is no admin of the host", () => {
    expect([isHostAdmin(userNsRoot), mayMountDirectly(userNsRoot), mayChown(userNsRoot)]).toEqual([false, true, true]);
  });

  it("a plain user may do none of it", () => {
    expect([isHostAdmin(plainUser), mayMountDirectly(plainUser), mayChown(plainUser)]).toEqual([false, false, false]);
  });

  it("this process answers as its uid suggests when it is plain root or a plain user", () => {
    const p = readPrivilege();
    if (p.initialUserNamespace && IS_ROOT) expect(isHostAdmin(p)).toBe(true);
    if (p.initialUserNamespace && !IS_ROOT && p.effective === 0n) expect(isHostAdmin(p)).toBe(false);
  });
});

describe("read from real processes", () => {
  const canUnshare = commandWorks("unshare", ["-r", "true"]);

  it.skipIf(!canUnshare)("uid 0 in a user namespace holds every capability, yet is not host admin", () => {
    const run = (file: string) => execFileSync("unshare", ["-r", "cat", file], { encoding: "utf8" });
    const p = { effective: parseEffectiveCapabilities(run("/proc/self/status")), initialUserNamespace: false };
    expect(isInitialUserNamespace(run("/proc/self/uid_map"))).toBe(false);
    expect(hasCapability(CAP_SYS_ADMIN, p)).toBe(true);
    expect(isHostAdmin(p)).toBe(false);
  });

  it.skipIf(!IS_ROOT)("a user other than root holds none", () => {
    const status = execFileSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", "/proc/self/status"],
      {
        encoding: "utf8",
      },
    );
    expect(parseEffectiveCapabilities(status)).toBe(0n);
  });
});
