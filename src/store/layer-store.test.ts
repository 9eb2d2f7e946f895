/**
 * LayerStore, housekeeping and the snapshotter through direct calls on a store in a temp dir:
 * layers stored once by DiffID, refusals of what is in use, gc, df, staging cleanup, and the
 * mount descriptions the snapshotter returns. No mounts: the end-to-end tests through the CLI
 * and real mounts are in store.mount.test.ts. Runs as any user (where trusted.* xattrs are out
 * of reach, stores write `.wh.` whiteouts, which only the case about whiteouts looks at).
 */
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseOverlayOptions } from "../format/overlay-options.js";
import { isHostAdmin } from "../sys/privilege.js";
import { packTar } from "../testing/image-archive.js";
import { sha256 } from "../testing/oci-flatten.js";
import { useScratch } from "../testing/scratch.js";
import { commitContainer } from "./commit.js";
import { collectGarbage, diskUsage } from "./housekeeping.js";
import { type ImageRecord, LayerStore } from "./layer-store.js";
import { StoreSnapshotter } from "./snapshotter.js";

const scratch = useScratch("unionfs-layer-store-");

async function openStore(): Promise<LayerStore> {
  return LayerStore.open(scratch().path("store"));
}

/** A one-file layer tar; distinct `content` gives a distinct DiffID. */
function layerTar(content: string, name = "f"): Promise<Buffer> {
  return packTar([{ name, data: content }]);
}

async function addLayer(store: LayerStore, content: string): Promise<string> {
  return (await store.addLayer(Readable.from([await layerTar(content)]))).layer.diffId;
}

function imageOf(name: string, layers: string[]): ImageRecord {
  return { name, layers, config: {}, created: new Date(0).toISOString() };
}

/** A readable that fails the test if anything reads it. */
function unreadable(): Readable {
  return new Readable({
    read() {
      this.destroy(new Error("the input was read"));
    },
  });
}

describe("layers", () => {
  it("are stored once by DiffID: the same tar added again adds nothing", async () => {
    const store = await openStore();
    const bytes = await layerTar("a");
    const first = await store.addLayer(Readable.from([bytes]));
    const again = await store.addLayer(Readable.from([bytes]));
    expect(first).toMatchObject({ added: true, layer: { diffId: sha256(bytes), size: bytes.length } });
    expect(again).toEqual({ added: false, layer: first.layer });
    expect((await store.listLayers()).map((l) => l.diffId)).toEqual([sha256(bytes)]);
    expect(readdirSync(store.diffDir(sha256(bytes)))).toEqual(["f"]);
  });

  it("record deletions in the kernel's encoding exactly where this process can write it", async () => {
    const store = await openStore();
    const bytes = await packTar([
      { name: "d", type: "directory" },
      { name: "d/.wh.gone", data: "" },
    ]);
    const diff = store.diffDir((await store.addLayer(Readable.from([bytes]))).layer.diffId);
    if (isHostAdmin()) {
      const st = lstatSync(join(diff, "d/gone"));
      expect([st.isCharacterDevice(), st.rdev]).toEqual([true, 0]);
    } else {
      expect(readdirSync(join(diff, "d"))).toEqual([".wh.gone"]);
    }
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("are not read again when the expected DiffID is in the store already", async () => {
    const store = await openStore();
    const diffId = await addLayer(store, "a");
    await expect(store.addLayer(unreadable(), diffId)).resolves.toMatchObject({ added: false });
  });

  it("that do not hash to the expected DiffID are refused, leaving no layer and no staging", async () => {
    const store = await openStore();
    const wrong = sha256("another layer");
    await expect(store.addLayer(Readable.from([await layerTar("a")]), wrong)).rejects.toMatchObject({
      kind: "digest-mismatch",
    });
    expect(await store.listLayers()).toEqual([]);
    expect(readdirSync(join(store.root, "layers/sha256"))).toEqual([]);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("in use by an image or a container are not removed, and the refusal names the users", async () => {
    const store = await openStore();
    const a = await addLayer(store, "a");
    await store.putImage(imageOf("img:1", [a]));
    await store.createContainer("img:1", "c1");
    await expect(store.removeLayer(a)).rejects.toMatchObject({
      kind: "in-use",
      message: `layer ${a} is used by image img:1, container c1`,
    });
    expect(await store.getLayer(a)).not.toBeNull();
  });

  it("of a missing DiffID are not-found, for removal as for lookups", async () => {
    const store = await openStore();
    const missing = sha256("nothing");
    await expect(store.removeLayer(missing)).rejects.toMatchObject({ kind: "not-found" });
    await expect(store.requireLayer(missing)).rejects.toMatchObject({ kind: "not-found" });
  });

  it("stack as lower directories topmost first, as lowerdir= wants them", async () => {
    const store = await openStore();
    const [a, b] = [sha256("a"), sha256("b")];
    expect(store.lowerDirs([a, b])).toEqual([store.diffDir(b), store.diffDir(a)]);
  });
});

describe("images", () => {
  it("must name layers the store holds", async () => {
    const store = await openStore();
    await expect(store.putImage(imageOf("img:1", [sha256("absent")]))).rejects.toMatchObject({
      kind: "not-found",
    });
    expect(await store.listImages()).toEqual([]);
  });

  it("keep names with slashes, colons and percent signs", async () => {
    const store = await openStore();
    const a = await addLayer(store, "a");
    const name = "registry.example:5000/team/app:1.0%beta";
    await store.putImage(imageOf(name, [a]));
    expect((await store.listImages()).map((i) => i.name)).toEqual([name]);
    expect(await store.requireImage(name)).toMatchObject({ name, layers: [a] });
  });

  it("whose name starts with a dot are listed and keep their layers through gc", async () => {
    const store = await openStore();
    const a = await addLayer(store, "a");
    await store.putImage(imageOf(".hidden", [a]));
    expect((await store.listImages()).map((i) => i.name)).toEqual([".hidden"]);
    expect(await collectGarbage(store)).toEqual([]);
  });

  it("used by a container are not removed", async () => {
    const store = await openStore();
    await store.putImage(imageOf("img:1", [await addLayer(store, "a")]));
    await store.createContainer("img:1", "c1");
    await expect(store.removeImage("img:1")).rejects.toMatchObject({
      kind: "in-use",
      message: "image img:1 is used by container c1",
    });
    await store.removeContainer("c1");
    await store.removeImage("img:1");
    expect(await store.listImages()).toEqual([]);
  });
});

describe("containers", () => {
  it("are found by name, by id and by a unique id prefix of at least 4 digits", async () => {
    const store = await openStore();
    await store.putImage(imageOf("img:1", [await addLayer(store, "a")]));
    const c = await store.createContainer("img:1", "web");
    expect(await store.findContainer("web")).toEqual(c);
    expect(await store.findContainer(c.id)).toEqual(c);
    expect(await store.findContainer(c.id.slice(0, 4))).toEqual(c);
    expect(await store.findContainer(c.id.slice(0, 3))).toBeNull();
    await expect(store.createContainer("img:1", "web")).rejects.toMatchObject({ kind: "conflict" });
    expect(await store.listContainers()).toHaveLength(1);
  });

  it("keep the layers they were made with when their image's name moves to other layers", async () => {
    const store = await openStore();
    const [a, b] = [await addLayer(store, "a"), await addLayer(store, "b")];
    await store.putImage(imageOf("img:1", [a]));
    const c = await store.createContainer("img:1", "c1");
    await store.putImage(imageOf("img:1", [b]));
    expect((await store.requireContainer("c1")).layers).toEqual([a]);
    expect(await collectGarbage(store)).toEqual([]);
    await store.removeContainer(c.id);
    expect(await collectGarbage(store)).toEqual([a]);
  });

  it("commit their upper as a new top layer; the same upper twice gives the same DiffID", async () => {
    const store = await openStore();
    const a = await addLayer(store, "a");
    await store.putImage(imageOf("img:1", [a]));
    const c = await store.createContainer("img:1", "c1");
    writeFileSync(join(store.containerDir(c.id), "upper/new"), "new\n");
    const one = await commitContainer(store, "c1", "img:2");
    const two = await commitContainer(store, "c1", "img:3");
    expect(one.layers).toHaveLength(2);
    expect(one.layers[0]).toBe(a);
    expect(two.layers).toEqual(one.layers);
    expect(one.config).toMatchObject({ rootfs: { type: "layers", diff_ids: one.layers } });
    expect(readdirSync(store.diffDir(one.layers[1] as string))).toEqual(["new"]);
  });
});

describe("housekeeping", () => {
  it("gc removes exactly the layers no image and no container uses", async () => {
    const store = await openStore();
    const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((x) => layerTar(x)));
    const ids: string[] = [];
    for (const bytes of [a, b, c, d]) ids.push((await store.addLayer(Readable.from([bytes as Buffer]))).layer.diffId);
    const [la, lb, lc, ld] = ids as [string, string, string, string];
    await store.putImage(imageOf("one", [la, lb]));
    await store.putImage(imageOf("two", [la, lc]));
    await store.createContainer("two", "c1");
    await store.removeImage("one");
    expect((await collectGarbage(store)).sort()).toEqual([lb, ld].sort());
    expect((await store.listLayers()).map((l) => l.diffId).sort()).toEqual([la, lc].sort());
    expect(await collectGarbage(store)).toEqual([]);
  });

  it("df counts a layer two images share as shared for both, and each layer once in the total", async () => {
    const store = await openStore();
    const ids: string[] = [];
    const sizes: number[] = [];
    for (const x of ["a", "b", "c"]) {
      const { layer } = await store.addLayer(Readable.from([await layerTar(x.repeat(2000 * (ids.length + 1)))]));
      ids.push(layer.diffId);
      sizes.push(layer.size);
    }
    const [la, lb, lc] = ids as [string, string, string];
    const [sa, sb, sc] = sizes as [number, number, number];
    await store.putImage(imageOf("one", [la, lb]));
    await store.putImage(imageOf("two", [la, lc, lc])); // a layer twice in one stack counts once
    expect(await diskUsage(store)).toEqual({
      images: [
        { image: "one", layers: 2, size: sa + sb, shared: sa, unique: sb },
        { image: "two", layers: 3, size: sa + sc, shared: sa, unique: sc },
      ],
      total: sa + sb + sc,
    });
  });

  it("locked() clears what an interrupted command left in tmp/ before it runs", async () => {
    const store = await openStore();
    mkdirSync(join(store.root, "tmp/0123456789abcdef/diff.partial-xyz"), { recursive: true });
    writeFileSync(join(store.root, "tmp/rm-leftover"), "");
    expect(await store.locked(async () => readdirSync(join(store.root, "tmp")))).toEqual([]);
  });
});

describe("StoreSnapshotter", () => {
  const measure = async () => ({ size: 42, inodes: 3 });

  it("prepare makes a container and returns its overlay mount; view returns the lowers only", async () => {
    const store = await openStore();
    const [a, b] = [await addLayer(store, "a"), await addLayer(store, "b")];
    await store.putImage(imageOf("img:1", [a, b]));
    const snapshotter = new StoreSnapshotter(store, measure);
    const mounts = await snapshotter.prepare("k1", "img:1");
    const dir = store.containerDir((await store.requireContainer("k1")).id);
    const lowerdir = `lowerdir=${store.diffDir(b)}:${store.diffDir(a)}`;
    expect(mounts).toEqual([
      {
        type: "overlay",
        source: "overlay",
        options: [lowerdir, `upperdir=${join(dir, "upper")}`, `workdir=${join(dir, "work")}`],
      },
    ]);
    expect(await snapshotter.mounts("k1")).toEqual(mounts);
    expect(await snapshotter.view("v1", "img:1")).toEqual([
      { type: "overlay", source: "overlay", options: [lowerdir] },
    ]);
    await expect(snapshotter.view("k1", "img:1")).rejects.toMatchObject({ kind: "conflict" });
    expect(await snapshotter.usage("k1")).toEqual({ size: 42, inodes: 3 });
  });

  it("escapes layer paths holding ':' or ',', which overlayfs would split on", async () => {
    const store = await LayerStore.open(scratch().path("st:o,re"));
    const [a, b] = [await addLayer(store, "a"), await addLayer(store, "b")];
    await store.putImage(imageOf("img:1", [a, b]));
    const snapshotter = new StoreSnapshotter(store, measure);
    const [mount] = await snapshotter.prepare("k1", "img:1");
    const dir = store.containerDir((await store.requireContainer("k1")).id);
    const escaped = (path: string) => path.replaceAll(":", "\\:").replaceAll(",", "\\,");
    expect(mount?.options).toEqual([
      `lowerdir=${escaped(store.diffDir(b))}:${escaped(store.diffDir(a))}`,
      `upperdir=${escaped(join(dir, "upper"))}`,
      `workdir=${escaped(join(dir, "work"))}`,
    ]);
    expect(parseOverlayOptions(mount?.options ?? [])).toEqual({
      lowerdir: [store.diffDir(b), store.diffDir(a)],
      upperdir: join(dir, "upper"),
      workdir: join(dir, "work"),
      others: [],
    });
  });

  it("commit names a committed snapshot; walk lists committed and active ones; remove ends one", async () => {
    const store = await openStore();
    await store.putImage(imageOf("img:1", [await addLayer(store, "a")]));
    const snapshotter = new StoreSnapshotter(store, measure);
    await snapshotter.prepare("k1", "img:1");
    await snapshotter.commit("img:2", "k1");
    const seen: string[] = [];
    await snapshotter.walk((info) => {
      seen.push(`${info.kind} ${info.name} ${info.parent ?? "-"}`);
    });
    expect(seen).toEqual(["committed img:1 -", "committed img:2 -", "active k1 img:1"]);
    await snapshotter.remove("k1");
    await expect(snapshotter.mounts("k1")).rejects.toMatchObject({ kind: "not-found" });
  });
});
