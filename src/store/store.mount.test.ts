/**
 * The layer store end to end (issue 5, "Done when"), through the built CLI in child processes
 * (`node dist/cli/main.js ... --store <scratch>`; run `npm run build` first):
 *
 * 1. an imported image mounts (unionfs, and kernel overlayfs over the store's layer dirs) as the
 *    rootfs the OCI spec defines, computed by an independent flattener (src/testing/oci-flatten);
 * 2. container -> changes -> diff -> commit -> export -> import elsewhere, views and DiffIDs kept;
 * 3. every archive form the importer reads;
 * 4. hostile and corrupt archives: one-line refusal, the store unchanged;
 * 5. shared layers stored once, df, refusals of rm for what is in use, gc;
 * 6. concurrent imports, and an import killed mid-extraction;
 * 7. where the store is (--store, $UNIONFS_STORE; never the default /var/lib/unionfs here).
 *
 * Every store, mount point and archive lives in the test's Scratch, which unmounts whatever is
 * still mounted in afterEach. Archive fixtures shared by the tests are built once per file.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunResult, runCli } from "../testing/cli-run.js";
import {
  blobPath,
  layerBlob,
  legacyDockerSave,
  ociLayout,
  packArchive,
  packTar,
  withLayers,
  writeArchiveDir,
  writeLargeImage,
} from "../testing/image-archive.js";
import { mountOverlay } from "../testing/mounts.js";
import { type ArchiveImage, flattenImage, readArchiveImage, sha256, viewLines } from "../testing/oci-flatten.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch, useScratch } from "../testing/scratch.js";
import { requireFreshBuild, StoreCli } from "../testing/store-cli.js";

const REPO = join(import.meta.dirname, "../..");
const NAME = "unionfs-test:latest";

/** Built once: the test image (tools/build-test-image.mjs), its parts and its flattened rootfs. */
let fixtures: Scratch;
let imageTar: string;
let image: ArchiveImage;
let diffIds: string[];
let rootfsView: string[];

describeAsRoot("layer store, end to end", () => {
  const scratch = useScratch("unionfs-store-e2e-");
  const storeCli = (name = "store") => new StoreCli(scratch(), scratch().path(name));

  beforeAll(async () => {
    requireFreshBuild();
    fixtures = new Scratch("unionfs-store-fixtures-");
    imageTar = fixtures.path("image.tar");
    execFileSync(process.execPath, [join(REPO, "tools/build-test-image.mjs"), imageTar], { stdio: "ignore" });
    image = await readArchiveImage(imageTar);
    diffIds = image.layers.map((l) => sha256(l.tar));
    const rootfs = fixtures.mkdir("rootfs");
    await flattenImage(imageTar, rootfs);
    rootfsView = await viewLines(rootfs);
  });
  afterAll(async () => {
    await fixtures?.cleanup();
  });

  /** `unionfs mount --image NAME` of `cli`'s store on a fresh mount point; its view. */
  async function mountedView(cli: StoreCli, name: string): Promise<string[]> {
    const mnt = scratch().mkdir(`mnt-${Math.random().toString(36).slice(2, 8)}`);
    const unmount = await cli.mount("--image", name, mnt);
    try {
      return await viewLines(mnt);
    } finally {
      await unmount();
    }
  }

  /** Kernel overlayfs over the store's dirs of `layers` (DiffIDs, bottom first); its view. */
  async function overlayView(cli: StoreCli, layers: readonly string[]): Promise<string[]> {
    const lowers = [...layers].reverse().map((d) => cli.diffDir(d));
    const mnt = await mountOverlay(
      scratch(),
      { lowers },
      scratch().mkdir(`ovl-${Math.random().toString(36).slice(2, 8)}`),
    );
    try {
      return await viewLines(mnt.mountpoint);
    } finally {
      await mnt.unmount();
    }
  }

  // --- 1. import -> mount = the spec's rootfs ---------------------------------------------------

  describe("an imported image", () => {
    it("has a reference rootfs in which the top layer's whiteout and opaque directory took effect", () => {
      const paths = rootfsView.map((l) => l.split(" ")[0]);
      expect(paths).not.toContain("etc/motd"); // .wh.motd
      expect(paths).not.toContain("var/cache/old.txt"); // var/cache/.wh..wh..opq
      expect(paths).toEqual(expect.arrayContaining(["var/cache/new.txt", "app/helper.txt", "app/run.sh", "bin/sh"]));
      expect(paths.filter((p) => p?.includes(".wh."))).toEqual([]);
    });

    it("mounts with `unionfs mount --image` as that rootfs", async () => {
      const cli = storeCli();
      expect(await cli.ok(["image", "import", imageTar])).toBe(`${NAME}\n`);
      expect(await cli.imageLayers(NAME)).toEqual(diffIds);
      expect(await mountedView(cli, NAME)).toEqual(rootfsView);
    });

    it("mounts with kernel overlayfs over the store's layer dirs as that rootfs", async () => {
      const cli = storeCli();
      await cli.ok(["image", "import", imageTar]);
      expect(await overlayView(cli, await cli.imageLayers(NAME))).toEqual(rootfsView);
    });
  });

  // --- 2. container -> commit -> export -> import ---------------------------------------------

  describe("a container", () => {
    const EXPECTED_DIFF = [
      "C /etc",
      "C /etc/hostname",
      "D /etc/os-release",
      "A /newdir",
      "A /newfile",
      "C /usr",
      "C /usr/share",
      "C /usr/share/doc",
      "A /usr/share/doc/renamed",
      "A /usr/share/doc/renamed/README",
      "D /usr/share/doc/unionfs",
    ];

    it("lists its changes, commits to an image with its view, and that image moves between stores", async () => {
      const cli = storeCli();
      await cli.ok(["image", "import", imageTar]);
      expect(await cli.ok(["container", "create", NAME, "--name", "c1"])).toBe("c1\n");
      const mnt = scratch().mkdir("mnt-c1");
      const unmount = await cli.mount("--container", "c1", mnt);
      let view: string[];
      try {
        writeFileSync(join(mnt, "etc/hostname"), "changed\n"); // write over a lower file
        writeFileSync(join(mnt, "newfile"), "new\n");
        rmSync(join(mnt, "etc/os-release")); // delete a lower file
        renameSync(join(mnt, "usr/share/doc/unionfs"), join(mnt, "usr/share/doc/renamed")); // a lower dir
        mkdirSync(join(mnt, "newdir"));
        view = await viewLines(mnt);
      } finally {
        await unmount();
      }
      const paths = view.map((l) => l.split(" ")[0]);
      expect(paths).toEqual(expect.arrayContaining(["usr/share/doc/renamed/README", "newdir", "newfile"]));
      expect(paths).not.toContain("etc/os-release");
      expect(paths).not.toContain("usr/share/doc/unionfs");

      expect((await cli.ok(["diff", "c1"])).trimEnd().split("\n")).toEqual(EXPECTED_DIFF);

      expect(await cli.ok(["commit", "c1", "--name", "committed:1"])).toBe("committed:1\n");
      const layers = await cli.imageLayers("committed:1");
      expect(layers.slice(0, -1)).toEqual(diffIds);
      const top = layers[layers.length - 1] as string;
      expect(await mountedView(cli, "committed:1")).toEqual(view);

      // the same container again: the same changeset, byte for byte
      await cli.ok(["commit", "c1", "--name", "committed:2"]);
      expect(await cli.imageLayers("committed:2")).toEqual(layers);

      const layerTar = scratch().path("top.tar");
      await cli.ok(["layer", "export", top, "-o", layerTar]);
      expect(sha256(readFileSync(layerTar))).toBe(top);

      // export -> import elsewhere. The base layers come back as the store's own re-encoding
      // of them (other DiffIDs than the build script's tars); the committed one is that encoding.
      const archive = scratch().path("committed.tar");
      await cli.ok(["image", "export", "committed:1", "-o", archive]);
      const other = storeCli("store2");
      expect(await other.ok(["image", "import", archive])).toBe("committed:1\n");
      const imported = await other.imageLayers("committed:1");
      expect(imported).toHaveLength(layers.length);
      expect(imported[imported.length - 1]).toBe(top);
      expect(await overlayView(other, imported)).toEqual(view);
    });
  });

  describe("image export", () => {
    it("of an image with a repeated layer imports again", async () => {
      const cli = storeCli();
      const empty = layerBlob(await packTar([]));
      const repeated = withLayers(image, [...image.layers, empty, empty], "repeated:1");
      const archive = scratch().path("repeated.tar");
      writeFileSync(archive, await packArchive(ociLayout(repeated, { dockerManifest: true })));
      await cli.ok(["image", "import", archive]);
      const exported = scratch().path("exported.tar");
      await cli.ok(["image", "export", "repeated:1", "-o", exported]);
      const reimport = await storeCli("store2").run(["image", "import", exported]);
      expect(reimport.stderr).toBe("");
      expect(reimport.code).toBe(0);
    });
  });

  // --- 3. archive forms -------------------------------------------------------------------------

  describe("imports every archive form", () => {
    const forms: { form: string; build: (s: Scratch) => Promise<string> }[] = [
      { form: "docker save tar (OCI layout + manifest.json)", build: async () => imageTar },
      {
        form: "OCI image layout directory",
        build: async (s) => {
          const dir = s.mkdir("layout");
          execFileSync("tar", ["-xf", imageTar, "-C", dir]);
          rmSync(join(dir, "manifest.json")); // a bare OCI layout: index.json only
          return dir;
        },
      },
      {
        form: "legacy docker save (manifest.json, <id>/layer.tar, no index.json)",
        build: async (s) => {
          const path = s.path("legacy.tar");
          writeFileSync(path, await packArchive(legacyDockerSave(image)));
          return path;
        },
      },
      {
        form: "gzip'd docker save tar",
        build: async (s) => {
          const path = s.path("image.tar.gz");
          writeFileSync(path, gzipSync(readFileSync(imageTar)));
          return path;
        },
      },
      {
        form: "OCI layout with a zstd layer",
        build: async (s) => {
          const [bottom, middle, top] = image.layers;
          if (bottom === undefined || middle === undefined || top === undefined) throw new Error("3 layers expected");
          const zstd = layerBlob(middle.tar, "zstd");
          expect(zstd.blob.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
          // the manifest names the zstd blob's digest; the config keeps the layer's DiffID
          return writeArchiveDir(ociLayout(withLayers(image, [bottom, zstd, top])), s.mkdir("zstd-layout"));
        },
      },
    ];

    // The unionfs mount of an imported image is tested above; here what matters is what the
    // store holds, and kernel overlayfs over its layer dirs shows that in milliseconds.
    it.each(forms)("$form", async ({ build }) => {
      const cli = storeCli();
      const source = await build(scratch());
      expect(await cli.ok(["image", "import", source])).toBe(`${NAME}\n`);
      expect(await cli.imageLayers(NAME)).toEqual(diffIds);
      expect(await overlayView(cli, diffIds)).toEqual(rootfsView);
    });
  });

  // --- 4. hostile and corrupt archives --------------------------------------------------------

  describe("refuses a hostile or corrupt archive", () => {
    /** The test image with its top layer replaced by `tar` (diff_ids consistent with it). */
    const withTop = (tarBytes: Buffer) => withLayers(image, [...image.layers.slice(0, -1), layerBlob(tarBytes)]);
    const toTar = async (s: Scratch, files: Map<string, Buffer>, name: string) => {
      writeFileSync(s.path(name), await packArchive(files));
      return s.path(name);
    };
    const topBlob = (img: ArchiveImage) => blobPath(sha256(img.layers[img.layers.length - 1]?.blob ?? Buffer.alloc(0)));

    interface Outcome {
      result: RunResult;
      before: string[];
      after: string[];
      imagesAfter: unknown[];
      tmpAfter: string[];
      escaped: string[];
    }
    interface Case {
      what: string;
      build: (s: Scratch) => Promise<string>;
      message: RegExp;
    }
    const cases: Case[] = [
      {
        what: "a manifest naming a missing blob",
        build: async (s) => {
          const files = ociLayout(image, { dockerManifest: true });
          files.delete(topBlob(image));
          return toTar(s, files, "missing-blob.tar");
        },
        message: /blob sha256:[0-9a-f]{64}.*missing/,
      },
      {
        what: "a layer blob whose digest mismatches its descriptor",
        build: async (s) => {
          const files = ociLayout(image, { dockerManifest: true });
          files.set(topBlob(image), await packTar([{ name: "evil", data: "not the layer the manifest names\n" }]));
          return toTar(s, files, "blob-mismatch.tar");
        },
        message: /blob sha256:[0-9a-f]{64} has digest sha256:[0-9a-f]{64}/,
      },
      {
        what: "config diff_ids not matching the layer's real DiffID",
        build: async (s) => {
          const wrong = [...diffIds.slice(0, -1), sha256("some other layer")];
          const lying = { ...image, config: { ...image.config, rootfs: { type: "layers", diff_ids: wrong } } };
          return toTar(s, ociLayout(lying, { dockerManifest: true }), "diffid-mismatch.tar");
        },
        message: /digest mismatch: expected sha256:[0-9a-f]{64}, the layer is sha256:[0-9a-f]{64}/,
      },
      {
        what: "a layer tar with a ../escape entry",
        build: async (s) => {
          const evil = withTop(await packTar([{ name: "../escape", data: "x" }]));
          return toTar(s, ociLayout(evil, { dockerManifest: true }), "dotdot.tar");
        },
        message: /entry '\.\.\/escape': '\.\.' component/,
      },
      {
        what: "an outer tar with an absolute path entry",
        build: async (s) => {
          const path = s.path("absolute.tar");
          const extra = [{ name: s.path("escaped"), data: "x" }];
          writeFileSync(path, await packArchive(ociLayout(image, { dockerManifest: true }), extra));
          return path;
        },
        message: /entry '\/.*\/escaped': absolute path/,
      },
      {
        what: "a count mismatch between diff_ids and layers",
        build: async (s) => {
          const short = {
            ...image,
            config: { ...image.config, rootfs: { type: "layers", diff_ids: diffIds.slice(1) } },
          };
          return toTar(s, ociLayout(short, { dockerManifest: true }), "count.tar");
        },
        message: /lists 2 layers \(rootfs\.diff_ids\) but the manifest 3/,
      },
    ];

    /** Imports the case's archive into a fresh store and records what happened, as data. */
    const refusedImport = async (c: Case): Promise<Outcome> => {
      const s = scratch();
      const cli = storeCli();
      const archive = await c.build(s);
      const before = await cli.contents(); // nothing: the store does not exist yet
      const result = await cli.run(["image", "import", archive]);
      const imagesAfter = await cli.json<unknown[]>(["image", "ls", "--json"]); // the next command
      // where the absolute entry would land if it were extracted as named
      const escaped = [s.path("escaped")].filter((p) => existsSync(p));
      return { result, before, after: await cli.contents(), imagesAfter, tmpAfter: cli.tmpEntries(), escaped };
    };

    it.each(cases)("$what: one line, exit 1, no image, nothing escaped, tmp/ cleared", async (c) => {
      const { result, before, after, imagesAfter, tmpAfter, escaped } = await refusedImport(c);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderrLines).toHaveLength(1);
      expect(result.stderrLines[0]).toMatch(/^unionfs: /);
      expect(result.stderrLines[0]).toMatch(c.message);
      expect(imagesAfter).toEqual([]);
      expect(tmpAfter).toEqual([]);
      expect(escaped).toEqual([]);
      expect(after).toEqual(before);
    });

    it("a blob that is a symlink out of the archive: refused as such, nothing read", async () => {
      const s = scratch();
      const secret = s.path("host-secret");
      writeFileSync(secret, "not for the archive\n");
      const files = ociLayout(image);
      const config = blobPath(sha256(JSON.stringify(image.config)));
      expect(files.delete(config)).toBe(true);
      const archive = s.path("symlinked-blob.tar");
      writeFileSync(archive, await packArchive(files, [{ name: config, type: "symlink", linkname: secret }]));
      const cli = storeCli();
      const result = await cli.run(["image", "import", archive]);
      expect(result.code).toBe(1);
      expect(result.stderrLines).toHaveLength(1);
      expect(result.stderr).not.toContain(sha256(readFileSync(secret)));
      expect(result.stderrLines[0]).toMatch(/outside the archive|symbolic link|not a regular file/);
    });
  });

  // --- 5. sharing and housekeeping ------------------------------------------------------------

  describe("shared layers", () => {
    interface LayerRow {
      diffId: string;
      size: number;
      usedBy: string[];
    }
    interface Usage {
      images: { image: string; layers: number; size: number; shared: number; unique: number }[];
      total: number;
    }

    /** The test image and `other:1`, which shares its bottom two layers. */
    async function twoImages(cli: StoreCli): Promise<{ otherTop: string }> {
      const top = await packTar([
        { name: "etc/", type: "directory" },
        { name: "etc/other", data: "other\n" },
      ]);
      const other = withLayers(image, [...image.layers.slice(0, 2), layerBlob(top)], "other:1");
      const archive = scratch().path("other.tar");
      writeFileSync(archive, await packArchive(ociLayout(other, { dockerManifest: true })));
      await cli.ok(["image", "import", imageTar]);
      expect(await cli.ok(["image", "import", archive])).toBe("other:1\n");
      return { otherTop: sha256(top) };
    }

    it("are stored once, and df splits each image into shared and unique bytes", async () => {
      const cli = storeCli();
      const { otherTop } = await twoImages(cli);
      const [l0, l1, l2] = diffIds as [string, string, string];
      const rows = await cli.json<LayerRow[]>(["layer", "ls", "--json"]);
      expect(rows.map((r) => r.diffId).sort()).toEqual([l0, l1, l2, otherTop].sort());
      expect(readdirSync(join(cli.root, "layers/sha256"))).toHaveLength(4);
      const users = Object.fromEntries(rows.map((r) => [r.diffId, [...r.usedBy].sort()]));
      expect(users[l0]).toEqual(["image other:1", `image ${NAME}`]);
      expect(users[l2]).toEqual([`image ${NAME}`]);
      expect(users[otherTop]).toEqual(["image other:1"]);

      const size = Object.fromEntries(rows.map((r) => [r.diffId, r.size]));
      const at = (d: string) => size[d] ?? Number.NaN;
      expect(rows.every((r) => r.size > 0)).toBe(true);
      const usage = await cli.json<Usage>(["df", "--json"]);
      const shared = at(l0) + at(l1);
      expect(usage.images.sort((a, b) => a.image.localeCompare(b.image))).toEqual([
        { image: "other:1", layers: 3, size: shared + at(otherTop), shared, unique: at(otherTop) },
        { image: NAME, layers: 3, size: shared + at(l2), shared, unique: at(l2) },
      ]);
      expect(usage.total).toBe(shared + at(l2) + at(otherTop));
    });

    it("in use cannot be removed; gc removes exactly what nothing references", async () => {
      const cli = storeCli();
      const { otherTop } = await twoImages(cli);
      const [l0] = diffIds as [string];
      await cli.ok(["container", "create", NAME, "--name", "c1"]);
      expect(await cli.json<{ name: string }[]>(["container", "ls", "--json"])).toMatchObject([{ name: "c1" }]);

      const layerRm = await cli.run(["layer", "rm", l0]);
      expect(layerRm.code).toBe(1);
      expect(layerRm.stderrLines).toHaveLength(1);
      expect(layerRm.stderrLines[0]).toMatch(/image other:1/);
      expect(layerRm.stderrLines[0]).toMatch(new RegExp(`image ${NAME}`));
      expect(layerRm.stderrLines[0]).toMatch(/container c1/);

      const imageRm = await cli.run(["image", "rm", NAME]);
      expect(imageRm.code).toBe(1);
      expect(imageRm.stderrLines).toHaveLength(1);
      expect(imageRm.stderrLines[0]).toMatch(/container c1/);
      expect((await cli.contents()).filter((e) => e.startsWith("layers/"))).toHaveLength(4);

      await cli.ok(["image", "rm", "other:1"]);
      expect(await cli.ok(["gc"])).toBe(`removed ${otherTop}\n`);
      await cli.ok(["container", "rm", "c1"]);
      expect(await cli.ok(["gc"])).toBe(""); // the image still holds its layers
      await cli.ok(["image", "rm", NAME]);
      const removed = (await cli.ok(["gc"])).trimEnd().split("\n");
      expect(removed.sort()).toEqual(diffIds.map((d) => `removed ${d}`).sort());
      expect(await cli.contents()).toEqual([]); // no layer, image or container left
    });
  });

  describe("housekeeping next to a live mount", () => {
    it("container rm of a mounted container is refused, its upper kept", async () => {
      const cli = storeCli();
      await cli.ok(["image", "import", imageTar]);
      await cli.ok(["container", "create", NAME, "--name", "c1"]);
      const mnt = scratch().mkdir("mnt");
      const unmount = await cli.mount("--container", "c1", mnt);
      try {
        writeFileSync(join(mnt, "kept"), "kept\n");
        const rm = await cli.run(["container", "rm", "c1"]);
        expect(readFileSync(join(mnt, "kept"), "utf8")).toBe("kept\n");
        expect(rm.code).toBe(1);
        expect(rm.stderrLines).toEqual([expect.stringMatching(/container c1 is mounted/)]);
      } finally {
        await unmount();
      }
    });

    it("gc does not delete the layers under a mounted image", async () => {
      const cli = storeCli();
      await cli.ok(["image", "import", imageTar]);
      const mnt = scratch().mkdir("mnt");
      const unmount = await cli.mount("--image", NAME, mnt);
      try {
        await cli.run(["image", "rm", NAME]);
        await cli.run(["gc"]);
        expect(await viewLines(mnt)).toEqual(rootfsView);
      } finally {
        await unmount();
      }
    });
  });

  // --- 6. concurrency and crashes -------------------------------------------------------------

  describe("concurrent commands", () => {
    it("two imports of the same archive at once both succeed and store each layer once", async () => {
      const cli = storeCli();
      const [a, b] = await Promise.all([
        cli.start(["image", "import", imageTar]).result,
        cli.start(["image", "import", imageTar]).result,
      ]);
      for (const r of [a, b]) {
        expect(r).toMatchObject({ code: 0, stdout: `${NAME}\n` });
        expect(r.stderrLines.filter((l) => !/waiting for another unionfs/.test(l))).toEqual([]);
      }
      expect((await cli.layerIds()).sort()).toEqual([...diffIds].sort());
      expect(readdirSync(join(cli.root, "layers/sha256"))).toHaveLength(3);
      expect(await cli.json<{ name: string }[]>(["image", "ls", "--json"])).toMatchObject([{ name: NAME }]);
      expect(cli.tmpEntries()).toEqual([]);
    });

    it("an import killed mid-extraction leaves no partial layer, and the next command clears tmp/", async () => {
      const s = scratch();
      const cli = storeCli();
      const layout = s.mkdir("big");
      const big = await writeLargeImage(layout, "big:1", 200 * 1024 * 1024);
      const running = cli.start(["image", "import", layout]);
      const partial = await waitForPartialFile(join(cli.root, "tmp"), 16 * 1024 * 1024, running);
      expect(partial, "the import finished before it could be killed mid-extraction").not.toBeNull();
      running.child.kill("SIGKILL");
      expect((await running.result).signal).toBe("SIGKILL");

      expect(cli.tmpEntries()).not.toEqual([]); // what the killed import left
      expect(await cli.layerIds()).toEqual([]); // the next command
      expect(cli.tmpEntries()).toEqual([]);
      expect(await cli.contents()).toEqual([]);
      expect(existsSync(cli.diffDir(big))).toBe(false);
    });
  });

  // --- 7. where the store is ------------------------------------------------------------------

  describe("store location", () => {
    const listImages = (env: Record<string, string>, args: string[] = [], cwd?: string) =>
      runCli(["image", "ls", "--json", ...args], { env, ...(cwd === undefined ? {} : { cwd }) });

    it("is $UNIONFS_STORE (relative to the working directory) when there is no --store", async () => {
      const s = scratch();
      const env = { UNIONFS_STORE: "env-store", UNIONFS_RUNTIME_DIR: s.runtimeDir };
      const imported = await runCli(["image", "import", imageTar], { env, cwd: s.root });
      expect(imported).toMatchObject({ code: 0, stdout: `${NAME}\n` });
      expect(readdirSync(s.path("env-store/images"))).toEqual([`${encodeURIComponent(NAME)}.json`]);
      const listed = await listImages(env, [], s.root);
      expect(JSON.parse(listed.stdout)).toMatchObject([{ name: NAME }]);
    });

    it("is --store when given, whatever $UNIONFS_STORE says", async () => {
      const s = scratch();
      const env = { UNIONFS_STORE: s.path("env-store"), UNIONFS_RUNTIME_DIR: s.runtimeDir };
      const imported = await runCli(["image", "import", imageTar, "--store", s.path("flag-store")], { env });
      expect(imported).toMatchObject({ code: 0, stdout: `${NAME}\n` });
      expect(readdirSync(s.path("flag-store/images"))).toHaveLength(1);
      expect(existsSync(s.path("env-store"))).toBe(false);
      expect(JSON.parse((await listImages(env, ["--store", s.path("flag-store")])).stdout)).toHaveLength(1);
    });
  });
});

/**
 * Polls for a file being extracted under `tmp` (in `<staging>/diff.partial-XXXXXX/`, where unpack
 * writes a layer) until it holds `minBytes`; null if the import exits first.
 */
async function waitForPartialFile(
  tmp: string,
  minBytes: number,
  running: { child: { exitCode: number | null; signalCode: string | null } },
): Promise<string | null> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && running.child.exitCode === null && running.child.signalCode === null) {
    for (const staging of existsSync(tmp) ? readdirSync(tmp) : []) {
      for (const partial of safeList(join(tmp, staging)).filter((n) => n.startsWith("diff.partial-"))) {
        for (const name of safeList(join(tmp, staging, partial))) {
          const path = join(tmp, staging, partial, name);
          if (safeSize(path) >= minBytes) return path;
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return null;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function safeSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
