/**
 * The layer store on disk:
 *
 *   layers/sha256/<hex>/diff/         an extracted layer, in overlayfs's upper format
 *   layers/sha256/<hex>/layer.json    its record (DiffID, size of the uncompressed tar)
 *   images/<name>.json                name, DiffIDs bottom -> top, image config
 *   containers/<id>/{upper,work,container.json}
 *   tmp/                              staging on the same filesystem; emptied under the lock
 *
 * Layers are content-addressed by DiffID and stored once. Everything becomes visible with one
 * rename of a complete, verified directory or one atomic metadata write, so a crash leaves only
 * staging garbage. Callers hold the store lock (`locked`) around every change.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { resolveWhiteoutStyle, type WhiteoutStyle } from "../format/whiteout-style.js";
import { readJsonOrNull, syncDir, writeJsonAtomic } from "./atomic-file.js";
import { chainId } from "./chain-id.js";
import { parseDigest } from "./digest.js";
import { dirInUse } from "./in-use.js";
import { StoreError } from "./store-error.js";
import { withStoreLock } from "./store-lock.js";
import { unpackLayer } from "./unpack.js";

export interface LayerRecord {
  diffId: string;
  /** bytes of the uncompressed layer tar */
  size: number;
  created: string;
}

export interface ImageRecord {
  name: string;
  /** DiffIDs, bottom layer first (the order of the image config's rootfs.diff_ids) */
  layers: string[];
  /** the OCI image config, as imported or as commit made it */
  config: Record<string, unknown>;
  created: string;
}

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  /** the image's DiffIDs when the container was made: it keeps them even if the image goes */
  layers: string[];
  created: string;
}

export interface StagedLayer {
  /** the staging dir holding diff/ and layer.json; null once committed, or when nothing was staged */
  dir: string | null;
  layer: LayerRecord;
}

export class LayerStore {
  /** the kernel's encoding where this process can write it here: tried in the first staging dir */
  private whiteout: WhiteoutStyle | undefined;

  private constructor(readonly root: string) {}

  static async open(root: string): Promise<LayerStore> {
    for (const dir of ["layers/sha256", "images", "containers", "tmp"]) {
      await mkdir(join(root, dir), { recursive: true, mode: 0o700 });
    }
    return new LayerStore(root);
  }

  /** Runs `fn` holding the store lock, after clearing what an interrupted command left in tmp/. */
  locked<T>(fn: () => Promise<T>, onWait?: () => void): Promise<T> {
    return withStoreLock(
      this.root,
      async () => {
        await this.clearStaging();
        return fn();
      },
      onWait,
    );
  }

  private async clearStaging(): Promise<void> {
    const tmp = join(this.root, "tmp");
    for (const name of await readdir(tmp)) await rm(join(tmp, name), { recursive: true, force: true });
  }

  /** A fresh directory under tmp/, on the store's filesystem. */
  async stagingDir(): Promise<string> {
    const dir = join(this.root, "tmp", randomBytes(8).toString("hex"));
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  // --- layers ---------------------------------------------------------------------------------

  layerDir(diffId: string): string {
    return join(this.root, "layers/sha256", parseDigest(diffId).hex);
  }

  diffDir(diffId: string): string {
    return join(this.layerDir(diffId), "diff");
  }

  getLayer(diffId: string): Promise<LayerRecord | null> {
    return readJsonOrNull<LayerRecord>(join(this.layerDir(diffId), "layer.json"));
  }

  async requireLayer(diffId: string): Promise<LayerRecord> {
    const layer = await this.getLayer(diffId);
    if (layer === null) throw new StoreError("not-found", `no layer ${diffId} in the store`);
    return layer;
  }

  async listLayers(): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const hex of (await readdir(join(this.root, "layers/sha256"))).sort()) {
      const layer = await this.getLayer(`sha256:${hex}`);
      if (layer !== null) out.push(layer);
    }
    return out;
  }

  /**
   * Extracts a layer tar (gzip, zstd or plain) into the store unless a layer with its DiffID
   * is there already; the digest is verified against `expectedDiffId` while streaming.
   */
  async addLayer(
    input: Readable,
    expectedDiffId?: string,
    onProgress?: (bytes: number) => void,
  ): Promise<{ layer: LayerRecord; added: boolean }> {
    const staged = await this.stageLayer(input, expectedDiffId, onProgress);
    try {
      if (await this.commitLayer(staged)) return { layer: staged.layer, added: true };
      return { layer: await this.requireLayer(staged.layer.diffId), added: false };
    } finally {
      await this.discardLayer(staged);
    }
  }

  /**
   * Extracts and verifies a layer into staging, invisible until `commitLayer`: an import of
   * several layers commits them only once every one of them is good.
   */
  async stageLayer(
    input: Readable,
    expectedDiffId?: string,
    onProgress?: (bytes: number) => void,
  ): Promise<StagedLayer> {
    if (expectedDiffId !== undefined) {
      const existing = await this.getLayer(expectedDiffId);
      if (existing !== null) {
        input.destroy();
        return { dir: null, layer: existing };
      }
    }
    const dir = await this.stagingDir();
    try {
      this.whiteout ??= resolveWhiteoutStyle("auto", join(dir, "whiteout-probe"));
      const opts = { whiteout: this.whiteout, ...(expectedDiffId === undefined ? {} : { expectedDiffId }), onProgress };
      const { diffId, size } = await unpackLayer(input, join(dir, "diff"), opts);
      const layer: LayerRecord = { diffId, size, created: new Date().toISOString() };
      await writeJsonAtomic(join(dir, "layer.json"), layer);
      return { dir, layer };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Moves a staged layer into place; false when the store had it already. */
  async commitLayer(staged: StagedLayer): Promise<boolean> {
    if (staged.dir === null || (await this.getLayer(staged.layer.diffId)) !== null) return false;
    await rename(staged.dir, this.layerDir(staged.layer.diffId));
    await syncDir(join(this.root, "layers/sha256"));
    staged.dir = null;
    return true;
  }

  async discardLayer(staged: StagedLayer): Promise<void> {
    if (staged.dir !== null) await rm(staged.dir, { recursive: true, force: true });
    staged.dir = null;
  }

  async removeLayer(diffId: string): Promise<void> {
    await this.requireLayer(diffId);
    const users = await this.layerUsers(diffId);
    if (users.length > 0) throw new StoreError("in-use", `layer ${diffId} is used by ${users.join(", ")}`);
    if (await this.layerMounted(diffId)) throw new StoreError("in-use", `layer ${diffId} is mounted`);
    // Renamed out of sight first: a crash halfway through the removal leaves only staging garbage.
    const doomed = join(this.root, "tmp", `rm-${parseDigest(diffId).hex}`);
    await rename(this.layerDir(diffId), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  /** Whether a mount (a unionfs daemon or kernel overlayfs) reads the layer right now. */
  layerMounted(diffId: string): Promise<boolean> {
    return dirInUse(this.diffDir(diffId));
  }

  /** Images and containers whose stacks include the layer. */
  async layerUsers(diffId: string): Promise<string[]> {
    const users: string[] = [];
    for (const image of await this.listImages()) if (image.layers.includes(diffId)) users.push(`image ${image.name}`);
    for (const c of await this.listContainers()) if (c.layers.includes(diffId)) users.push(`container ${c.name}`);
    return users;
  }

  /** Lower directories for a stack of DiffIDs (bottom first), topmost first as lowerdir= wants. */
  lowerDirs(layers: readonly string[]): string[] {
    return [...layers].reverse().map((diffId) => this.diffDir(diffId));
  }

  // --- images ---------------------------------------------------------------------------------

  private imagePath(name: string): string {
    // encodeURIComponent leaves a leading "." alone, which would hide the file like a temp file
    return join(this.root, "images", `${encodeURIComponent(name).replace(/^\./, "%2E")}.json`);
  }

  getImage(name: string): Promise<ImageRecord | null> {
    return readJsonOrNull<ImageRecord>(this.imagePath(name));
  }

  async requireImage(name: string): Promise<ImageRecord> {
    const image = await this.getImage(name);
    if (image === null) throw new StoreError("not-found", `no image named ${name}`);
    return image;
  }

  async putImage(image: ImageRecord): Promise<void> {
    for (const diffId of image.layers) await this.requireLayer(diffId);
    await writeJsonAtomic(this.imagePath(image.name), image);
  }

  async listImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const file of (await readdir(join(this.root, "images"))).sort()) {
      if (!file.endsWith(".json") || file.startsWith(".")) continue;
      const image = await readJsonOrNull<ImageRecord>(join(this.root, "images", file));
      if (image !== null) out.push(image);
    }
    return out;
  }

  async removeImage(name: string): Promise<void> {
    await this.requireImage(name);
    const users = (await this.listContainers()).filter((c) => c.image === name).map((c) => c.name);
    if (users.length > 0) throw new StoreError("in-use", `image ${name} is used by container ${users.join(", ")}`);
    await rm(this.imagePath(name));
  }

  static chainIdOf(image: ImageRecord): string | null {
    return chainId(image.layers);
  }

  // --- containers -----------------------------------------------------------------------------

  containerDir(id: string): string {
    return join(this.root, "containers", id);
  }

  async createContainer(imageName: string, name?: string): Promise<ContainerRecord> {
    const image = await this.requireImage(imageName);
    const id = randomBytes(16).toString("hex");
    const container: ContainerRecord = {
      id,
      name: name ?? id.slice(0, 12),
      image: image.name,
      layers: image.layers,
      created: new Date().toISOString(),
    };
    if ((await this.findContainer(container.name)) !== null) {
      throw new StoreError("conflict", `a container named ${container.name} exists already`);
    }
    const staging = await this.stagingDir();
    await mkdir(join(staging, "upper"), { mode: 0o755 });
    await mkdir(join(staging, "work"), { mode: 0o700 });
    await writeJsonAtomic(join(staging, "container.json"), container);
    await rename(staging, this.containerDir(id));
    await syncDir(join(this.root, "containers"));
    return container;
  }

  async listContainers(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const id of (await readdir(join(this.root, "containers"))).sort()) {
      const c = await readJsonOrNull<ContainerRecord>(join(this.containerDir(id), "container.json"));
      if (c !== null) out.push(c);
    }
    return out;
  }

  /** A container by name, by full id, or by a unique id prefix. */
  async findContainer(ref: string): Promise<ContainerRecord | null> {
    const all = await this.listContainers();
    const exact = all.find((c) => c.name === ref || c.id === ref);
    if (exact !== undefined) return exact;
    const byPrefix = all.filter((c) => ref.length >= 4 && c.id.startsWith(ref));
    return byPrefix.length === 1 ? (byPrefix[0] ?? null) : null;
  }

  async requireContainer(ref: string): Promise<ContainerRecord> {
    const c = await this.findContainer(ref);
    if (c === null) throw new StoreError("not-found", `no container ${ref}`);
    return c;
  }

  async removeContainer(ref: string): Promise<void> {
    const c = await this.requireContainer(ref);
    if (await dirInUse(join(this.containerDir(c.id), "upper"))) {
      throw new StoreError("in-use", `container ${c.name} is mounted: unmount it first`);
    }
    const doomed = join(this.root, "tmp", `rm-${c.id}`);
    await rename(this.containerDir(c.id), doomed);
    await rm(doomed, { recursive: true, force: true });
  }
}
