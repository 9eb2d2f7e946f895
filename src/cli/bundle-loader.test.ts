import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleId, cacheFileOf, loadBundle } from "./bundle-loader.cjs";

const BUILT_RUN_BUNDLE = fileURLToPath(new URL("../../dist/cli/run.cjs", import.meta.url));
const BUILT_RUN_MAIN = fileURLToPath(new URL("../../dist/cli/run-main.js", import.meta.url));
const LAUNCHER = fileURLToPath(new URL("../../dist/cli/unionfs.cjs", import.meta.url));

/** A small CommonJS bundle with a function that is compiled only when called. */
const ID = "0123456789abcdef";
const SOURCE = [
  `// bundle ${ID}`,
  '"use strict";',
  "function twice(x) { return x * 2; }",
  "module.exports = { twice, strict: (function () { return this; })() === undefined,",
  "  names: [typeof require, typeof module, typeof exports, __filename, __dirname] };",
  "",
].join("\n");

describe("loadBundle", () => {
  let dir = "";
  let file = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-bundle-loader-"));
    file = join(dir, "b.cjs");
    writeFileSync(file, SOURCE);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function saveCache(): void {
    const loaded = loadBundle(file);
    (loaded.exports as { twice(x: number): number }).twice(2);
    writeFileSync(cacheFileOf(file, ID), loaded.makeCache());
  }

  it("runs the bundle as a strict CommonJS module", () => {
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe("none");
    expect(loaded.exports).toEqual({
      twice: expect.any(Function),
      strict: true,
      names: ["function", "object", "object", file, dir],
    });
  });

  it("uses a cache made from the same build", () => {
    saveCache();
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe("used");
    expect((loaded.exports as { twice(x: number): number }).twice(21)).toBe(42);
  });

  it("never hands V8 the cache of another build, even of the same length", () => {
    saveCache();
    writeFileSync(file, SOURCE.replace(ID, "fedcba9876543210").replace("x * 2", "x + x"));
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe("none");
    expect(loaded.cacheFile).toBe(cacheFileOf(file, "fedcba9876543210"));
    expect((loaded.exports as { twice(x: number): number }).twice(21)).toBe(42);
  });

  it("compiles as usual when V8 refuses the cache", () => {
    writeFileSync(cacheFileOf(file, ID), Buffer.alloc(256, 7));
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe("refused");
    expect((loaded.exports as { twice(x: number): number }).twice(4)).toBe(8);
  });

  it("ignores a cache for a bundle without an id", () => {
    writeFileSync(file, SOURCE.replace(`// bundle ${ID}`, "// no id"));
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe("none");
    expect(loaded.cacheFile).toBeNull();
    expect(bundleId("// no id\n")).toBe("");
  });
});

describe.skipIf(!existsSync(BUILT_RUN_BUNDLE))("the built run bundle", () => {
  it("has a code cache this Node accepts (npm run build makes it)", () => {
    expect(loadBundle(BUILT_RUN_BUNDLE).cache).toBe("used");
  });

  it("is started by the launcher alone: no other file of ours, no node:module, no ES module loader", () => {
    // as `unionfs run --help`, from a script file (`node -e` loads both itself); the modules
    // Node loaded and the files it required, at exit. Each costs start-up: the first require()
    // of a file ~0.5 ms, node:module ~0.3 ms; the build inlines the loader into the launcher.
    const dir = mkdtempSync(join(tmpdir(), "unionfs-launcher-modules-"));
    try {
      const probe = join(dir, "probe.cjs");
      writeFileSync(
        probe,
        [
          "process.on('exit', () => console.error(JSON.stringify([process.moduleLoadList, Object.keys(require.cache)])));",
          `process.argv.splice(1, 1, ${JSON.stringify(LAUNCHER)}, "run", "--help");`,
          `require(${JSON.stringify(LAUNCHER)});`,
        ].join("\n"),
      );
      const r = spawnSync(process.execPath, [probe], { encoding: "utf8" });
      expect(r.status).toBe(0);
      const [loaded, required]: [string[], string[]] = JSON.parse(r.stderr.trim().split("\n").at(-1) ?? "[[], []]");
      expect(required.sort()).toEqual([LAUNCHER, probe].sort());
      expect(loaded).toContain("NativeModule vm");
      expect(loaded.filter((m) => /^NativeModule (module|internal\/modules\/esm\/loader)$/.test(m))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // tsc alone rebuilds dist/ but not the bundle, and `unionfs run` (and the runner's tests)
  // would then run the old code
  it("is not older than the modules tsc built: build with npm run build", () => {
    expect(statSync(BUILT_RUN_BUNDLE).mtimeMs).toBeGreaterThanOrEqual(statSync(BUILT_RUN_MAIN).mtimeMs);
  });
});
