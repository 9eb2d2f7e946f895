/**
 * `unionfs image export`: one tar that both `docker load` and OCI tools read: an OCI image
 * layout (oci-layout, index.json, blobs/sha256/...) plus docker's manifest.json pointing at the
 * same blobs, as docker 25+ writes it. Layer blobs are the layers' changesets, regenerated
 * from the store deterministically; the config's rootfs.diff_ids name exactly those tars.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { writeChangeset } from "./changeset.js";
import { writeTarFile } from "./commit.js";
import type { LayerStore } from "./layer-store.js";

const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
};

interface Blob {
  digest: string;
  size: number;
  /** in memory (JSON) or a staging file (layer tars) */
  data: Buffer | string;
}

function jsonBlob(value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { digest: `sha256:${createHash("sha256").update(data).digest("hex")}`, size: data.length, data };
}

/** The tar of one stored layer, as commit made it (or as it would be committed). */
export async function exportLayer(store: LayerStore, diffId: string, out: Writable): Promise<{ diffId: string }> {
  await store.requireLayer(diffId);
  return writeChangeset(store.diffDir(diffId), [], out);
}

export async function exportImage(store: LayerStore, name: string, out: Writable): Promise<void> {
  const image = await store.requireImage(name);
  const staging = await store.stagingDir();
  const layers: Blob[] = [];
  for (const [i, diffId] of image.layers.entries()) {
    const path = join(staging, `layer-${i}.tar`);
    const written = await writeTarFile(path, (o) => writeChangeset(store.diffDir(diffId), [], o));
    layers.push({ digest: written.diffId, size: (await lstat(path)).size, data: path });
  }
  const rootfs = { type: "layers", diff_ids: layers.map((l) => l.digest) };
  const config = jsonBlob({ ...image.config, rootfs });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
  });
  // a tag follows the last ':' after the last '/' ("localhost:5000/app" has none)
  const hasTag = name.lastIndexOf(":") > name.lastIndexOf("/");
  const ref = hasTag ? name : `${name}:latest`;
  const tag = ref.slice(ref.lastIndexOf(":") + 1);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifest.digest,
        size: manifest.size,
        annotations: { "io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag },
      },
    ],
  };
  const blobName = (b: Blob) => `blobs/sha256/${b.digest.slice("sha256:".length)}`;
  const dockerManifest = [{ Config: blobName(config), RepoTags: [ref], Layers: layers.map(blobName) }];

  const pack = tar.pack();
  const piping = pipeline(pack, out);
  const add = (path: string, data: Buffer) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name: path, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? reject(e) : resolve())),
    );
  pack.entry({ name: "blobs/", type: "directory", mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: "blobs/sha256/", type: "directory", mode: 0o755, mtime: new Date(0) });
  // a stack may hold one layer twice (two commits without changes): one blob, named once
  const unique = new Map([config, manifest, ...layers].map((b) => [b.digest, b]));
  for (const blob of unique.values()) {
    if (Buffer.isBuffer(blob.data)) {
      await add(blobName(blob), blob.data);
      continue;
    }
    const entry = pack.entry({ name: blobName(blob), size: blob.size, mode: 0o644, mtime: new Date(0) });
    await pipeline(createReadStream(blob.data), entry);
  }
  await add("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
  await add("index.json", Buffer.from(JSON.stringify(index)));
  await add("manifest.json", Buffer.from(JSON.stringify(dockerManifest)));
  pack.finalize();
  await piping;
}
