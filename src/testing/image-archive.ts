/**
 * Image archives for store tests, built from data: the forms `unionfs image import` reads (docker
 * save as docker 25+ writes it: an OCI layout plus manifest.json; a bare OCI layout; the legacy
 * docker save form with <id>/layer.tar) and broken variants of them. An archive stays a map
 * `name -> bytes` until `packArchive` or `writeArchiveDir` puts it on disk, so a test breaks one
 * file of a correct archive instead of writing a second builder.
 *
 * Digests in manifests are computed from the blobs as given; a test that wants a mismatch edits
 * the map afterwards. Config diff_ids are left as the caller set them (see `withLayers`).
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { type ArchiveImage, type ImageLayer, sha256 } from "./oci-flatten.js";

export type Archive = Map<string, Buffer>;
export type Compression = "none" | "gzip" | "zstd";

const MTIME = new Date("2026-01-01T00:00:00Z");
const MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json";
const LAYER_MEDIA: Record<Compression, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

/** One tar entry; defaults: a file, mode 0644 (0755 for directories), root-owned, MTIME. */
export interface TarSpec {
  name: string;
  type?: tar.Header["type"];
  mode?: number;
  data?: string | Buffer;
  linkname?: string;
}

export async function packTar(specs: readonly TarSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const s of specs) {
    const type = s.type ?? "file";
    const header = {
      name: s.name,
      type,
      mode: s.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: 0,
      gid: 0,
      mtime: MTIME,
      linkname: s.linkname,
    };
    // a file entry without a buffer would wait for its body to be written: give it an empty one
    const data = s.data !== undefined ? Buffer.from(s.data) : type === "file" ? Buffer.alloc(0) : undefined;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error | null) => (e ? reject(e) : resolve());
      if (data === undefined) pack.entry(header, done);
      else pack.entry(header, data, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A layer from its uncompressed tar, compressed as asked (zstd by the `zstd` program). */
export function layerBlob(tarBytes: Buffer, compression: Compression = "none"): ImageLayer {
  const blob =
    compression === "gzip"
      ? gzipSync(tarBytes)
      : compression === "zstd"
        ? execFileSync("zstd", ["-q", "-c"], { input: tarBytes, maxBuffer: 1 << 30 })
        : tarBytes;
  return { blob, mediaType: LAYER_MEDIA[compression], tar: tarBytes };
}

/** `image` with other layers, its config's rootfs.diff_ids naming exactly their tars. */
export function withLayers(image: ArchiveImage, layers: ImageLayer[], name = image.name): ArchiveImage {
  const config = { ...image.config, rootfs: { type: "layers", diff_ids: layers.map((l) => sha256(l.tar)) } };
  return { name, config, layers };
}

export function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** An OCI image layout; with `dockerManifest`, also docker's manifest.json over the same blobs. */
export function ociLayout(image: ArchiveImage, opts: { dockerManifest?: boolean } = {}): Archive {
  const files: Archive = new Map();
  const layers = image.layers.map((l) => {
    files.set(blobPath(sha256(l.blob)), l.blob);
    return { mediaType: l.mediaType, digest: sha256(l.blob), size: l.blob.length };
  });
  return layoutFiles(files, image.name, image.config, layers, opts.dockerManifest === true);
}

/** Adds config, manifest, index.json, oci-layout (and manifest.json) for layers already in `files`. */
function layoutFiles(
  files: Archive,
  name: string | null,
  config: Record<string, unknown>,
  layers: readonly Descriptor[],
  dockerManifest: boolean,
): Archive {
  const addBlob = (mediaType: string, data: Buffer): Descriptor => {
    files.set(blobPath(sha256(data)), data);
    return { mediaType, digest: sha256(data), size: data.length };
  };
  const configDesc = addBlob("application/vnd.oci.image.config.v1+json", Buffer.from(JSON.stringify(config)));
  const manifest = { schemaVersion: 2, mediaType: MANIFEST_MEDIA, config: configDesc, layers };
  const manifestDesc = addBlob(MANIFEST_MEDIA, Buffer.from(JSON.stringify(manifest)));
  const annotations = name === null ? {} : { "io.containerd.image.name": name };
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ ...manifestDesc, annotations }],
  };
  files.set("index.json", Buffer.from(JSON.stringify(index)));
  files.set("oci-layout", Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  if (dockerManifest) {
    const entry = {
      Config: blobPath(configDesc.digest),
      RepoTags: name === null ? [] : [name],
      Layers: layers.map((l) => blobPath(l.digest)),
    };
    files.set("manifest.json", Buffer.from(JSON.stringify([entry])));
  }
  return files;
}

/**
 * docker save before docker 25: manifest.json, `<hex>.json` (the config), `<id>/layer.tar`
 * (uncompressed) with `<id>/VERSION` and `<id>/json`, and `repositories`; no index.json.
 */
export function legacyDockerSave(image: ArchiveImage): Archive {
  const files: Archive = new Map();
  const config = Buffer.from(JSON.stringify(image.config));
  const configName = `${sha256(config).slice("sha256:".length)}.json`;
  files.set(configName, config);
  const ids: string[] = [];
  for (const layer of image.layers) {
    const parent = ids[ids.length - 1];
    const id = createHash("sha256")
      .update(`${parent ?? ""}\n${sha256(layer.tar)}`)
      .digest("hex");
    files.set(`${id}/layer.tar`, layer.tar);
    files.set(`${id}/VERSION`, Buffer.from("1.0"));
    files.set(`${id}/json`, Buffer.from(JSON.stringify({ id, ...(parent === undefined ? {} : { parent }) })));
    ids.push(id);
  }
  const tags = image.name === null ? [] : [image.name];
  files.set(
    "manifest.json",
    Buffer.from(JSON.stringify([{ Config: configName, RepoTags: tags, Layers: ids.map((id) => `${id}/layer.tar`) }])),
  );
  const [repo, tag] = (image.name ?? "unnamed:latest").split(":");
  files.set("repositories", Buffer.from(JSON.stringify({ [repo ?? ""]: { [tag ?? "latest"]: ids[ids.length - 1] } })));
  return files;
}

/** The archive as one tar (directories first, files sorted), plus `extra` raw entries at the end. */
export async function packArchive(files: Archive, extra: readonly TarSpec[] = []): Promise<Buffer> {
  const names = [...files.keys()].sort();
  const dirs = new Set<string>();
  for (const name of names) {
    for (let d = dirname(name); d !== "."; d = dirname(d)) dirs.add(`${d}/`);
  }
  return packTar([
    ...[...dirs].sort().map((name) => ({ name, type: "directory" as const })),
    ...names.map((name) => ({ name, data: files.get(name) ?? Buffer.alloc(0) })),
    ...extra,
  ]);
}

export function writeArchiveDir(files: Archive, dir: string): string {
  for (const [name, data] of files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/**
 * An OCI layout directory holding a one-layer image whose layer is one file of `bytes` bytes,
 * streamed to disk (never whole in memory). The content repeats a random megabyte, each copy
 * stamped with its index, so no two blocks are equal. Returns the layer's DiffID.
 */
export async function writeLargeImage(dir: string, name: string, bytes: number): Promise<string> {
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const tmp = join(dir, "layer.tmp");
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const pack = tar.pack();
  const written = pipeline(pack, hasher, createWriteStream(tmp));
  const block = randomBytes(1 << 20);
  function* content() {
    for (let at = 0, i = 0; at < bytes; at += block.length, i++) {
      const chunk = Buffer.from(block.subarray(0, Math.min(block.length, bytes - at)));
      chunk.writeUInt32BE(i, 0);
      yield chunk;
    }
  }
  const entry = pack.entry({ name: "big.bin", size: bytes, mode: 0o644, uid: 0, gid: 0, mtime: MTIME });
  await pipeline(Readable.from(content()), entry);
  pack.finalize();
  await written;
  const diffId = `sha256:${hash.digest("hex")}`;
  renameSync(tmp, join(dir, blobPath(diffId)));
  const layer = { mediaType: LAYER_MEDIA.none, digest: diffId, size: statSync(join(dir, blobPath(diffId))).size };
  const config = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } };
  writeArchiveDir(layoutFiles(new Map(), name, config, [layer], false), dir);
  return diffId;
}
