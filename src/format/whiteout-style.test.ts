import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isHostAdmin } from "../sys/privilege.js";
import { resolveWhiteoutStyle, xattrNamespaceOf } from "./whiteout-style.js";

describe("xattrNamespaceOf", () => {
  it("pairs the device style with trusted.overlay. and the file style with user.overlay.", () => {
    expect(xattrNamespaceOf("chardev")).toBe("trusted.overlay.");
    expect(xattrNamespaceOf("file")).toBe("user.overlay.");
  });
});

describe("resolveWhiteoutStyle", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-whiteout-style-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps an explicit choice without trying anything", () => {
    expect(resolveWhiteoutStyle("chardev", join(dir, "missing", "p"))).toBe("chardev");
    expect(resolveWhiteoutStyle("file", join(dir, "p"))).toBe("file");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("resolves auto to the kernel's style exactly when this process administers the host", () => {
    expect(resolveWhiteoutStyle("auto", join(dir, "p"))).toBe(isHostAdmin() ? "chardev" : "file");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("falls back to files where the probe cannot run", () => {
    expect(resolveWhiteoutStyle("auto", join(dir, "missing", "p"))).toBe("file");
  });
});
