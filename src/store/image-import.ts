/**
 * `unionfs image import`: docker save tarballs (manifest.json, legacy and the OCI-layout form
 * newer docker writes) and OCI image layouts (index.json -> manifest -> config + layers), as a
 * directory or a tar (gzip'd or not).
 *
 * An archive is first unpacked into staging with the same hostile-entry checks as a layer;
 * every blob is then verified against its digest before use, and every layer against the
 * DiffID the config names while it is extracted. Layers the store has already are not read
 * again. The image record is written last, so a failure leaves at most unreferenced layers.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readlink, realpath } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { hasCode } from "../errors.js";
import { DigestStream, parseDigest } from "./digest.js";
import type { ImageRecord, LayerStore, StagedLayer } from "./layer-store.js";
import { StoreError } from "./store-error.js";
import { unpackLayer } from "./unpack.js";

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const MEDIA_INDEX = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

export interface ImportOptions {
  name?: string;
  /** one line per step, for a terminal */
  progress?: (message: string) => void;
}

interface LayerSource {
  /** file holding the layer blob (maybe compressed) */
  path: string;
  /** the blob's digest when the format names one (OCI), verified before extraction */
  blobDigest: string | null;
}

interface ParsedImage {
  name: string | null;
  config: Record<string, unknown>;
  layers: LayerSource[];
}

export async function importImage(store: LayerStore, source: string, opts: ImportOptions = {}): Promise<ImageRecord> {
  const progress = opts.progress ?? (() => {});
  let root = resolve(source);
  const st = await statSource(source);
  if (!st.isDirectory()) {
    root = join(await store.stagingDir(), "archive");
    progress(`reading ${source}`);
    await unpackLayer(createReadStream(source), root, { whiteout: "file" });
  }
  const parsed = (await exists(join(root, "index.json"))) ? await readOciLayout(root) : await readDockerSave(root);
  const diffIds = rootfsDiffIds(parsed.config);
  if (diffIds.length !== parsed.layers.length) {
    throw new StoreError(
      "corrupt",
      `the image config lists ${diffIds.length} layers (rootfs.diff_ids) but the manifest ${parsed.layers.length}`,
    );
  }
  // Every layer is staged and verified before any is committed: a bad layer N must not leave
  // layers 1..N-1 behind.
  const staged: StagedLayer[] = [];
  try {
    for (const [i, layer] of parsed.layers.entries()) {
      const diffId = diffIds[i] as string;
      if ((await store.getLayer(diffId)) !== null) {
        progress(`layer ${i + 1}/${diffIds.length} ${short(diffId)}: already in the store`);
        continue;
      }
      if (layer.blobDigest !== null) await verifyBlob(layer.path, layer.blobDigest);
      progress(`layer ${i + 1}/${diffIds.length} ${short(diffId)}: extracting`);
      staged.push(await store.stageLayer(createReadStream(layer.path), diffId));
    }
    for (const layer of staged) await store.commitLayer(layer);
  } finally {
    for (const layer of staged) await store.discardLayer(layer);
  }
  const name = opts.name ?? parsed.name ?? short(`sha256:${sha256Hex(JSON.stringify(parsed.config))}`);
  const image: ImageRecord = { name, layers: diffIds, config: parsed.config, created: new Date().toISOString() };
  await store.putImage(image);
  return image;
}

async function statSource(source: string) {
  try {
    return await lstat(source);
  } catch (e) {
    if (hasCode(e, "ENOENT")) throw new StoreError("not-found", `${source} does not exist`);
    throw e;
  }
}

// --- OCI image layout ---------------------------------------------------------------------------

async function readOciLayout(root: string): Promise<ParsedImage> {
  const index = await readJson(root, "index.json");
  let manifests = arrayField(index, "manifests", "index.json");
  let descriptor = pickManifest(manifests);
  let refName =
    annotation(descriptor, "io.containerd.image.name") ?? annotation(descriptor, "org.opencontainers.image.ref.name");
  // Nested indexes (multi-platform images): descend to an image manifest.
  for (let depth = 0; MEDIA_INDEX.has(String(descriptor.mediaType)); depth++) {
    if (depth > 4) throw new StoreError("corrupt", "image indexes nest too deep");
    const nested = await readBlobJson(root, descriptor);
    manifests = arrayField(nested, "manifests", "image index");
    descriptor = pickManifest(manifests);
  }
  const manifest = await readBlobJson(root, descriptor);
  const config = await readBlobJson(root, objectField(manifest, "config", "manifest"));
  const layers: LayerSource[] = [];
  for (const d of arrayField(manifest, "layers", "manifest")) {
    const digest = String(d.digest);
    layers.push({ path: await blobPath(root, digest), blobDigest: digest });
  }
  // A bare tag ("latest") is not a useful image name on its own.
  if (refName !== null && !refName.includes(":") && !refName.includes("/")) refName = null;
  return { name: refName, config, layers };
}

function pickManifest(manifests: Record<string, unknown>[]): Record<string, unknown> {
  const linux = manifests.find((m) => {
    const platform = m.platform as { os?: string; architecture?: string } | undefined;
    return platform === undefined || (platform.os === "linux" && platform.architecture === "amd64");
  });
  const chosen = linux ?? manifests[0];
  if (chosen === undefined) throw new StoreError("corrupt", "the image index lists no manifests");
  return chosen;
}

function annotation(descriptor: Record<string, unknown>, key: string): string | null {
  const annotations = descriptor.annotations as Record<string, unknown> | undefined;
  const value = annotations?.[key];
  return typeof value === "string" && value.length > 0 ? value : null;
}

/** A blob of the layout, as a regular file inside it (a symlink may not lead elsewhere). */
async function blobPath(root: string, digest: string): Promise<string> {
  const { algorithm, hex } = parseDigest(digest);
  const rel = join("blobs", algorithm, hex);
  const path = await resolveInside(root, rel);
  if (path === null) throw new StoreError("corrupt", `the manifest names blob ${digest}, which is missing`);
  return path;
}

async function readBlobJson(root: string, descriptor: Record<string, unknown>): Promise<Record<string, unknown>> {
  const digest = String(descriptor.digest);
  const path = await blobPath(root, digest);
  const data = await readLimited(path);
  await verifyBlob(path, digest);
  return parseJson(data, digest);
}

// --- docker save ------------------------------------------------------------------------------

async function readDockerSave(root: string): Promise<ParsedImage> {
  if (!(await exists(join(root, "manifest.json")))) {
    throw new StoreError("unsupported", "not an image: no manifest.json (docker save) or index.json (OCI layout)");
  }
  const manifest = await readJson(root, "manifest.json");
  if (!Array.isArray(manifest) || manifest.length === 0)
    throw new StoreError("corrupt", "manifest.json lists no images");
  const entry = manifest[0] as Record<string, unknown>;
  const config = parseJson(await readInside(root, String(entry.Config)), String(entry.Config));
  const layerPaths = entry.Layers;
  if (!Array.isArray(layerPaths)) throw new StoreError("corrupt", "manifest.json has no Layers list");
  const layers: LayerSource[] = [];
  for (const rel of layerPaths) {
    const path = await resolveInside(root, String(rel));
    if (path === null) throw new StoreError("corrupt", `manifest.json names layer ${String(rel)}, which is missing`);
    layers.push({ path, blobDigest: null });
  }
  const tags = entry.RepoTags;
  const name = Array.isArray(tags) && typeof tags[0] === "string" ? tags[0] : null;
  return { name, config, layers };
}

/**
 * A file inside the unpacked archive, following symlinks only while they stay inside it
 * (legacy docker save links duplicate layer.tar files to each other).
 */
async function resolveInside(root: string, rel: string): Promise<string | null> {
  let path = resolve(root, rel);
  for (let hops = 0; hops < 16; hops++) {
    if (!isInside(root, path)) throw new StoreError("hostile-entry", `${rel} points outside the archive`);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch (e) {
      if (hasCode(e, "ENOENT", "ENOTDIR")) return null;
      throw e;
    }
    if (!st.isSymbolicLink()) {
      // no symlinked parents either: the real path must still be inside
      if (!isInside(await realpath(root), await realpath(path))) {
        throw new StoreError("hostile-entry", `${rel} points outside the archive`);
      }
      return st.isFile() ? path : null;
    }
    path = resolve(dirname(path), await readlink(path));
  }
  throw new StoreError("hostile-entry", `${rel}: too many symbolic links`);
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep);
}

async function readInside(root: string, rel: string): Promise<Buffer> {
  const path = await resolveInside(root, rel);
  if (path === null) throw new StoreError("corrupt", `the archive has no ${rel}`);
  return readLimited(path);
}

// --- shared -----------------------------------------------------------------------------------

function rootfsDiffIds(config: Record<string, unknown>): string[] {
  const rootfs = config.rootfs as { diff_ids?: unknown } | undefined;
  if (!Array.isArray(rootfs?.diff_ids)) throw new StoreError("corrupt", "the image config has no rootfs.diff_ids");
  return rootfs.diff_ids.map((d) => {
    parseDigest(String(d));
    return String(d);
  });
}

async function verifyBlob(path: string, digest: string): Promise<void> {
  const expected = parseDigest(digest);
  const hasher = new DigestStream();
  await pipeline(createReadStream(path), hasher);
  if (hasher.hex !== expected.hex) {
    throw new StoreError("digest-mismatch", `blob ${digest} has digest sha256:${hasher.hex}`);
  }
}

async function readJson(root: string, rel: string): Promise<Record<string, unknown>> {
  return parseJson(await readInside(root, rel), rel);
}

async function readLimited(path: string): Promise<Buffer> {
  const st = await lstat(path);
  if (st.size > MAX_JSON_BYTES) throw new StoreError("corrupt", `${path} is too large for image metadata`);
  return readFile(path);
}

function parseJson(data: Buffer, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(data.toString("utf8")) as unknown;
    if (typeof value !== "object" || value === null) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch (e) {
    throw new StoreError("corrupt", `${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function arrayField(obj: Record<string, unknown>, key: string, what: string): Record<string, unknown>[] {
  const value = obj[key];
  if (!Array.isArray(value)) throw new StoreError("corrupt", `${what} has no ${key} list`);
  return value as Record<string, unknown>[];
}

function objectField(obj: Record<string, unknown>, key: string, what: string): Record<string, unknown> {
  const value = obj[key];
  if (typeof value !== "object" || value === null) throw new StoreError("corrupt", `${what} has no ${key}`);
  return value as Record<string, unknown>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}
