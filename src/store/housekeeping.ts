/**
 * `unionfs gc` and `unionfs df`: what nothing references goes; what each image costs, split
 * into bytes it shares with other images and bytes only it holds (layer sizes are those of
 * the uncompressed layer tars).
 */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { LayerStore } from "./layer-store.js";

export async function collectGarbage(store: LayerStore): Promise<string[]> {
  const used = new Set<string>();
  for (const image of await store.listImages()) for (const l of image.layers) used.add(l);
  for (const c of await store.listContainers()) for (const l of c.layers) used.add(l);
  const removed: string[] = [];
  for (const layer of await store.listLayers()) {
    // a layer under a live `mount --image` is kept until the next gc after the unmount
    if (used.has(layer.diffId) || (await store.layerMounted(layer.diffId))) continue;
    await store.removeLayer(layer.diffId);
    removed.push(layer.diffId);
  }
  return removed;
}

export interface ImageUsage {
  image: string;
  layers: number;
  size: number;
  shared: number;
  unique: number;
}

export async function diskUsage(store: LayerStore): Promise<{ images: ImageUsage[]; total: number }> {
  const images = await store.listImages();
  const sizes = new Map((await store.listLayers()).map((l) => [l.diffId, l.size]));
  const users = new Map<string, number>();
  for (const image of images) for (const l of new Set(image.layers)) users.set(l, (users.get(l) ?? 0) + 1);
  const out = images.map((image) => {
    let shared = 0;
    let unique = 0;
    for (const l of new Set(image.layers)) {
      const size = sizes.get(l) ?? 0;
      if ((users.get(l) ?? 0) > 1) shared += size;
      else unique += size;
    }
    return { image: image.name, layers: image.layers.length, size: shared + unique, shared, unique };
  });
  return { images: out, total: [...sizes.values()].reduce((a, b) => a + b, 0) };
}

/** Bytes and inodes below `dir` (hard links counted once), as `du` would count them. */
export async function measureDir(dir: string): Promise<{ size: number; inodes: number }> {
  const seen = new Set<string>();
  let size = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    size += Number(st.blocks) * 512;
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(dir);
  return { size, inodes: seen.size };
}
