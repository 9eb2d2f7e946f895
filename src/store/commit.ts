/**
 * Commit: a container's upper becomes a new layer (its OCI changeset) and a new image with
 * that layer on top of the container's own. The changeset is written to staging, then imported
 * like any layer tar, so the stored layer is exactly what `layer export` gives back.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { writeChangeset } from "./changeset.js";
import type { ImageRecord, LayerStore } from "./layer-store.js";

export async function commitContainer(store: LayerStore, ref: string, name?: string): Promise<ImageRecord> {
  const container = await store.requireContainer(ref);
  const upper = join(store.containerDir(container.id), "upper");
  const staging = await store.stagingDir();
  const tarPath = join(staging, "layer.tar");
  const { diffId } = await writeTarFile(tarPath, (out) =>
    writeChangeset(upper, store.lowerDirs(container.layers), out),
  );
  await store.addLayer(createReadStream(tarPath), diffId);
  const layers = [...container.layers, diffId];
  const parent = await store.getImage(container.image);
  const config = configWithLayers(parent?.config ?? {}, layers, `unionfs commit ${container.name}`);
  const image: ImageRecord = {
    name: name ?? `sha256:${createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 12)}`,
    layers,
    config,
    created: new Date().toISOString(),
  };
  await store.putImage(image);
  return image;
}

/** The parent's config with the new rootfs and one more history entry, as `docker commit` makes it. */
export function configWithLayers(
  parent: Record<string, unknown>,
  diffIds: readonly string[],
  createdBy: string,
): Record<string, unknown> {
  const history = Array.isArray(parent.history) ? [...parent.history] : [];
  const created = new Date().toISOString();
  history.push({ created, created_by: createdBy });
  return {
    architecture: "amd64",
    os: "linux",
    ...parent,
    created,
    rootfs: { type: "layers", diff_ids: [...diffIds] },
    history,
  };
}

/** Runs a tar writer into a new file and waits until the file is complete on disk. */
export async function writeTarFile<T>(path: string, write: (out: Writable) => Promise<T>): Promise<T> {
  const out = createWriteStream(path, { flags: "wx" });
  const done = finished(out);
  const result = await write(out);
  if (!out.writableEnded) out.end();
  await done;
  return result;
}
