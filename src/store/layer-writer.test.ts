import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LayerWriter, type TarEntry } from "./layer-writer.js";
import type { TarHeader } from "./tar-header.js";

let base: string;
let root: string;
let outside: string;
let writer: LayerWriter;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "unionfs-writer-"));
  root = join(base, "root");
  outside = join(base, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writer = new LayerWriter(root, "file");
});
afterEach(() => {
  writer.close();
  rmSync(base, { recursive: true, force: true });
});

function entry(header: Partial<TarHeader> & { name: string }, data = ""): TarEntry {
  const full: TarHeader = { mode: 0o644, mtime: new Date(0), size: data.length, type: "file", ...header };
  return Object.assign(
    (async function* () {
      if (data !== "") yield Buffer.from(data);
    })(),
    { header: full },
  );
}

describe("LayerWriter", () => {
  it("the kernel check refuses a parent swapped for a symlink behind the writer's back", async () => {
    await writer.add(entry({ name: "d/", type: "directory", size: 0 }));
    // Not something an archive can do (the writer's own records say d is a directory): this
    // pins the second line of defence, openat2 RESOLVE_NO_SYMLINKS on each new parent.
    renameSync(join(root, "d"), join(base, "d-moved"));
    symlinkSync(outside, join(root, "d"));
    await expect(writer.add(entry({ name: "d/x" }, "data"))).rejects.toMatchObject({
      kind: "hostile-entry",
      message: expect.stringContaining("not a plain directory inside the layer"),
    });
    expect(readdirSync(outside)).toEqual([]);
  });

  it("never writes through a final-component symlink that appeared behind its back", async () => {
    symlinkSync(join(outside, "f"), join(root, "f"));
    await expect(writer.add(entry({ name: "f" }, "data"))).rejects.toMatchObject({ code: "EEXIST" });
    expect(readdirSync(outside)).toEqual([]);
  });
});
