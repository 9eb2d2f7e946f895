/**
 * Differential read tests of the on-disk encodings: every whiteout and opaque encoding unionfs
 * reads, mixed in one directory, whiteouts with nothing below them, and a directory of 10,000
 * entries. Each stack is mounted read-only by kernel overlayfs (the oracle, in its own
 * encodings) and by unionfs (in the encodings under test); see read-differential.mount.test.ts.
 */
import { expect, it } from "vitest";
import { differential } from "../testing/differential.js";
import { dir, type Entry, file, OPAQUE_FORMATS, opaque, WHITEOUT_FORMATS, whiteout } from "../testing/fixture.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

for (const transport of selectedTransports()) {
  describeAsRoot(`read-only union encodings, ${transport}: kernel overlayfs vs unionfs`, () => {
    encodingTests(transport);
  });
}

function encodingTests(transport: string): void {
  const scratch = useScratch();

  it("a directory of 10,000 entries across two layers", async () => {
    const n = (i: number) => `f${String(i).padStart(5, "0")}`;
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    const s = scratch();
    s.mountTmpfs("layers");
    const r = await differential(
      s,
      [
        [...range(0, 5000).map((i) => file(`big/${n(i)}`)), ...range(9000, 9200).map((i) => whiteout(`big/${n(i)}`))],
        range(2500, 10000).map((i) => file(`big/${n(i)}`, `content ${i}`)),
      ],
      // every object is stat'ed and listed; content and xattrs of one in 250 (time)
      { transport, layersIn: "layers", details: (rel) => rel === "big" || rel.endsWith("000") || rel.endsWith("250") },
    );
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect(r.unionfs.nodes.size).toBe(1 + 1 + 9800);
  });

  it("every whiteout encoding, in the top and in a middle layer", async () => {
    const layers: Entry[][] = [[], [], []];
    for (const f of WHITEOUT_FORMATS) {
      layers[0]?.push(
        whiteout(`top-${f}/gone`, f),
        whiteout(`top-${f}/gone-dir`, f),
        file(`top-${f}/kept-top`),
        whiteout(`root-${f}`, f),
        file(`mid-${f}/top`),
      );
      layers[1]?.push(
        file(`top-${f}/gone`),
        dir(`top-${f}/gone-dir/sub`),
        file(`top-${f}/kept`),
        file(`root-${f}`),
        whiteout(`mid-${f}/gone`, f),
        file(`mid-${f}/mid`),
      );
      layers[2]?.push(file(`mid-${f}/gone`), file(`mid-${f}/bottom`), file(`top-${f}/gone`));
    }
    const r = await differential(scratch(), layers, { transport });
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    const visible = [...r.unionfs.nodes.keys()];
    expect(visible.filter((p) => p.includes("gone") || p.startsWith("root-") || p.includes(".wh."))).toEqual([]);
  });

  it("every opaque encoding, in the top and in a middle layer", async () => {
    const layers: Entry[][] = [[], [], []];
    for (const f of OPAQUE_FORMATS) {
      layers[0]?.push(opaque(`top-${f}`, f), file(`top-${f}/top`), dir(`mid-${f}`), file(`mid-${f}/top`));
      layers[1]?.push(file(`top-${f}/hidden`), opaque(`mid-${f}`, f), file(`mid-${f}/mid`));
      layers[2]?.push(file(`top-${f}/hidden2`), file(`mid-${f}/hidden`), dir(`mid-${f}/hidden-dir`));
    }
    const r = await differential(scratch(), layers, { transport });
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()].filter((p) => p.includes("hidden") || p.includes(".wh."))).toEqual([]);
  });

  it("all encodings mixed in one directory", async () => {
    const r = await differential(
      scratch(),
      [
        [
          whiteout("m/a", "chardev"),
          whiteout("m/b", "wh-file"),
          whiteout("m/c", "xattr"),
          opaque("m/o1", "wh-file"),
          opaque("m/o2", "user"),
          opaque("m/o3", "trusted"),
          file("m/o1/top"),
        ],
        [...["a", "b", "c", "d"].map((n) => file(`m/${n}`)), ...["o1", "o2", "o3"].map((n) => file(`m/${n}/hidden`))],
      ],
      { transport },
    );
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual(["", "m", "m/d", "m/o1", "m/o1/top", "m/o2", "m/o3"]);
  });

  // Known divergence, kept visible: the kernel shows a whiteout that has nothing below it when it
  // sits in a directory that exists in one layer only (such a directory is read as it is on
  // disk), and it never checks xattr whiteouts in the bottom layer. unionfs hides every whiteout
  // everywhere, as DESIGN.md asks ("meta entries never show"): a whiteout is never user data.
  it("whiteouts with nothing below them: hidden by unionfs, partly shown by the kernel", async () => {
    const r = await differential(
      scratch(),
      [
        [dir("solo"), whiteout("solo/w-chardev", "chardev"), whiteout("solo/w-xattr", "xattr"), file("solo/f")],
        [dir("merged"), file("merged/f")],
        [
          whiteout("merged/w-chardev", "chardev"),
          whiteout("merged/w-xattr", "xattr"),
          whiteout("w-bottom", "chardev"),
          dir("low"),
          whiteout("low/w-chardev", "chardev"),
          whiteout("low/w-xattr", "xattr"),
        ],
      ],
      { transport },
    );
    const shownByKernel = [
      ["low/w-chardev", "L2", "char"],
      ["low/w-xattr", "L2", "file"],
      ["merged/w-xattr", "L2", "file"],
      ["solo/w-chardev", "L0", "char"],
      ["solo/w-xattr", "L0", "file"],
    ];
    expect(r.differences).toEqual([
      ...shownByKernel.map(([path]) => `${path}: only in kernel`),
      ...shownByKernel.map(([path = "", layer, type]) => {
        const [dirName, name] = path.split("/");
        return `readdir ${dirName}: ${name} kernel={"ino":"${layer}:${path}","type":"${type}"} unionfs=(none)`;
      }),
    ]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual(["", "low", "merged", "merged/f", "solo", "solo/f"]);
  });
}
