import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCommand } from "../testing/cli-run.js";
import { removeTree } from "./remove-tree.js";

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const BUILT = join(import.meta.dirname, "../../dist/runner/remove-tree.js");

/** removeTree(path) run by the unprivileged user NOBODY when we are root (the built module), else by us. */
async function removeTreeAsCaller(path: string): Promise<string | null> {
  if (!IS_ROOT) return removeTree(path);
  const script = `import { removeTree } from ${JSON.stringify(BUILT)};
process.stdout.write(JSON.stringify(removeTree(${JSON.stringify(path)})));`;
  const r = await runCommand(process.execPath, ["--input-type=module", "-e", script], {
    user: { uid: NOBODY, gid: NOBODY },
  });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as string | null;
}

describe("removeTree", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-remove-tree-"));
  });
  afterEach(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it("removes a tree of files, empty and full directories", () => {
    const root = join(dir, "run");
    mkdirSync(join(root, "upper/a/b"), { recursive: true });
    mkdirSync(join(root, "work/work"), { recursive: true });
    writeFileSync(join(root, "status"), "exit 0\n");
    writeFileSync(join(root, "upper/a/b/f"), "x");
    expect(removeTree(root)).toBeNull();
    expect(existsSync(root)).toBe(false);
  });

  it("unlinks symlinks and never follows them, at the top or inside", () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "x");
    const root = join(dir, "run");
    mkdirSync(root);
    symlinkSync(outside, join(root, "link-to-dir"));
    symlinkSync(join(outside, "keep"), join(root, "link-to-file"));
    symlinkSync(join(dir, "nowhere"), join(root, "dangling"));
    expect(removeTree(root)).toBeNull();
    const topLink = join(dir, "top-link");
    symlinkSync(outside, topLink);
    expect(removeTree(topLink)).toBeNull();
    expect(existsSync(root)).toBe(false);
    expect(existsSync(topLink)).toBe(false);
    expect(readdirSync(outside)).toEqual(["keep"]);
  });

  it("copes with directories without permissions (a rootless overlay's work/work)", async () => {
    // owned by an unprivileged caller, who removes it: root would not notice the mode 000
    const parent = join(dir, "tmp");
    const root = join(parent, "run");
    mkdirSync(join(root, "work/work/inner"), { recursive: true });
    writeFileSync(join(root, "work/work/inner/f"), "x");
    if (IS_ROOT) {
      chmodSync(dir, 0o755);
      for (const path of [parent, root, join(root, "work"), join(root, "work/work"), join(root, "work/work/inner")]) {
        chownSync(path, NOBODY, NOBODY);
      }
      chownSync(join(root, "work/work/inner/f"), NOBODY, NOBODY);
    }
    chmodSync(join(root, "work/work"), 0o000);
    expect(await removeTreeAsCaller(root)).toBeNull();
    expect(existsSync(root)).toBe(false);
  });

  it("is done when there is nothing to remove", () => {
    expect(removeTree(join(dir, "missing"))).toBeNull();
  });
});
