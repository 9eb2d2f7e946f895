import { statSync } from "node:fs";
import { expect, it } from "vitest";
import { LAYOUT_NAMES, LayoutDirs, selectedLayouts } from "./fs-layout.js";
import { describeAsRoot } from "./root-gate.js";
import { useScratch } from "./scratch.js";

/** Distinct st_dev values of the paths, numbered by first appearance: [0, 0, 1] etc. */
function devices(...paths: string[]): number[] {
  const seen: bigint[] = [];
  return paths.map((p) => {
    const dev = statSync(p, { bigint: true }).dev;
    if (!seen.includes(dev)) seen.push(dev);
    return seen.indexOf(dev);
  });
}

// The layout suites prove nothing about crossing filesystems unless the layers really are apart.
describeAsRoot("filesystem layouts", () => {
  const scratch = useScratch();

  const cases: [string, number[], number[]][] = [
    // lower, lower, upper, work, scratch root | read-only lowers 0..3, scratch root
    ["one-fs", [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    ["split-tmpfs", [0, 0, 1, 1, 2], [0, 1, 0, 1, 2]],
    ["ext4-tmpfs", [0, 0, 1, 1, 0], [0, 1, 0, 1, 0]],
  ];
  it.each(cases)("%s puts the layers where it says", (name, withUpper, readOnly) => {
    const layout = selectedLayouts({ UNIONFS_LAYOUTS: name })[0];
    if (layout === undefined) throw new Error(`no layout ${name}`);
    const s = scratch();
    const d = new LayoutDirs(s, layout);
    expect(devices(d.lower("l0"), d.lower("l1"), d.upper("u"), d.upper("w"), s.root)).toEqual(withUpper);
    const r = new LayoutDirs(s, layout, { base: "ro" });
    const lowers = [0, 1, 2, 3].map((i) => r.readOnlyLower(`r${i}`, i));
    expect(devices(...lowers, s.root)).toEqual(readOnly);
  });

  it("UNIONFS_LAYOUTS picks layouts by name and refuses unknown ones", () => {
    expect(selectedLayouts({}).map((l) => l.name)).toEqual([...LAYOUT_NAMES]);
    expect(selectedLayouts({ UNIONFS_LAYOUTS: "ext4-tmpfs, one-fs" }).map((l) => l.name)).toEqual([
      "ext4-tmpfs",
      "one-fs",
    ]);
    expect(() => selectedLayouts({ UNIONFS_LAYOUTS: "split" })).toThrow(/unknown layout 'split'/);
  });
});
