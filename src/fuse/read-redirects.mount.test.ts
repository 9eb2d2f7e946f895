/**
 * Differential read tests of `overlay.redirect` on lower directories (a layer made by an overlay
 * mount with redirect_dir=on, where directories were renamed): kernel overlayfs, mounted with
 * redirect_dir=follow so that it follows them whatever its build defaults, against unionfs over
 * the same layer directories. The unit cases are in src/union/union-lookup.test.ts.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { errorCode } from "../errors.js";
import { differential, mountBoth } from "../testing/differential.js";
import { dir, type Entry, file, opaque, whiteout, xattr } from "../testing/fixture.js";
import { type FsLayout, selectedLayouts } from "../testing/fs-layout.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

const FOLLOW = ["redirect_dir=follow"];
const redirect = (path: string, to: string): Entry => xattr(path, "trusted.overlay.redirect", to);

for (const transport of selectedTransports()) {
  for (const layout of selectedLayouts()) {
    describeAsRoot(`lower redirects, ${transport}, ${layout.name}: kernel overlayfs vs unionfs`, () => {
      redirectTests(transport, layout);
    });
  }
}

function redirectTests(transport: string, layout: FsLayout): void {
  const scratch = useScratch();

  it("absolute, relative, mid-stack, stopped and chained redirects on lower directories", async () => {
    const r = await differential(
      scratch(),
      [
        [
          // absolute and relative, as a rename through a redirect_dir=on mount leaves them
          file("moved/top", "t"),
          redirect("moved", "/orig"),
          whiteout("orig"),
          file("p/new/top"),
          redirect("p/new", "old"),
          whiteout("p/old"),
          // the layer below redirects, this one merges at the name
          file("mid/top"),
          // targets that stop the merge below them
          file("to-gone/top"),
          redirect("to-gone", "/gone"),
          file("to-opaque/top"),
          redirect("to-opaque", "/o"),
          file("across/top"),
          redirect("across", "/a/b"),
          file("via-file/top"),
          redirect("via-file", "/f/x"),
          file("missing/top"),
          redirect("missing", "/nowhere"),
          // redirects met on the way down an absolute path
          file("way/top"),
          redirect("way", "/w/orig"),
          file("rel-way/top"),
          redirect("rel-way", "/rw/orig"),
        ],
        [
          file("mid/l1"),
          redirect("mid", "/mid-orig"),
          whiteout("mid-orig"),
          whiteout("gone"),
          opaque("o"),
          file("o/l1"),
          opaque("a"),
          file("a/b/l1"),
          file("f", "a file"),
          file("w/orig/l1"),
          redirect("w", "/w2"),
          file("rw/orig/l1"),
          redirect("rw", "rw2"),
          file("orig/sub/l1", "deep"),
        ],
        [
          file("orig/f", "from orig"),
          file("orig/sub/deeper/f", "deeper"),
          dir("orig/empty"),
          file("p/old/f", "from old"),
          file("mid-orig/l2"),
          file("mid/hidden"),
          file("gone/hidden"),
          file("o/hidden"),
          file("a/b/hidden"),
          file("f/x/hidden"),
          file("nowhere/l2"),
          file("w2/orig/l2"),
          file("rw2/orig/l2"),
          file("w/orig/hidden"),
          file("rw/orig/hidden"),
          file("moved/hidden"),
        ],
      ],
      { layout, transport, kernelOptions: FOLLOW },
    );
    expect(r.stack.shared).toBe(true);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    const visible = [...r.unionfs.nodes.keys()];
    expect(visible.filter((p) => p.includes("hidden"))).toEqual([]);
    expect(visible).toEqual(
      expect.arrayContaining([
        "moved/f",
        "moved/sub/l1",
        "moved/sub/deeper/f",
        "moved/empty",
        "p/new/f",
        "mid/l2",
        "o/l1",
        "to-opaque/l1",
        "across/l1",
        "missing/l2",
        "way/l1",
        "way/l2",
        "rel-way/l2",
      ]),
    );
  });

  // A known difference, kept on purpose: the kernel fails the lookup of a directory whose
  // redirect it refuses (EACCES for a "." or ".." component, EINVAL for an empty component or a
  // relative path); unionfs treats such a redirect as none and merges at the directory's own
  // name. Both stay inside the layer roots, which is what this pins.
  it("a redirect overlayfs refuses: the kernel fails the lookup, unionfs merges at the name; neither leaves the roots", async () => {
    const refused = ["/..", "..", "/orig/..", "//orig", "/orig/", "a/b", "/"];
    const m = await mountBoth(
      scratch(),
      [
        refused.flatMap((to, i) => [dir(`d${i}`), redirect(`d${i}`, to)]),
        [...refused.map((_, i) => file(`d${i}/own`)), file("orig/f"), file("a/b/f")],
      ],
      { layout, transport, kernelOptions: FOLLOW },
    );
    const list = async (mnt: string, rel: string) => {
      try {
        return (await readdir(join(mnt, rel))).sort().join(",");
      } catch (e) {
        return errorCode(e) ?? String(e);
      }
    };
    const view = async (mnt: string) => Promise.all(refused.map(async (to, i) => `${to} ${await list(mnt, `d${i}`)}`));
    expect(await view(m.unionfs.mountpoint)).toEqual(refused.map((to) => `${to} own`));
    const kernelErrno = (to: string) => (to.split("/").some((p) => p === "." || p === "..") ? "EACCES" : "EINVAL");
    expect(await view(m.kernel.mountpoint)).toEqual(refused.map((to) => `${to} ${kernelErrno(to)}`));
  });
}
