/**
 * unpackLayer: one OCI / docker layer tar (plain, gzip or zstd) -> a directory in overlayfs's
 * upper format, all or nothing.
 *
 *   input -> decompress -> DigestStream (DiffID: sha256 of the uncompressed tar) -> tar-stream
 *         -> LayerWriter (into `${dest}.partial-XXXXXX`, next to dest)
 *
 * Invariants:
 * - `dest` appears only complete: the temp directory is renamed to it (RENAME_NOREPLACE) after
 *   the whole stream was read, the digest matched `expectedDiffId`, whiteouts and directory
 *   attributes were applied and the filesystem was synced. On any failure the temp directory is
 *   removed, the input destroyed, and nothing exists at `dest`.
 * - A tar must end with its end-of-archive marker (a zero block): a stream cut at an entry
 *   boundary is refused as truncated even without an expected digest.
 * - Errors: StoreError for everything about the archive (see store-error.ts), the input's own
 *   errors and filesystem errors (ENOSPC, ...) as they are.
 */
import { chmod, lstat, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { errorCode, hasCode } from "../errors.js";
import type { WhiteoutStyle } from "../format/whiteout-style.js";
import { AT_FDCWD } from "../sys/openat2.js";
import { RENAME_NOREPLACE, renameat2 } from "../sys/rename.js";
import { syncDir } from "./atomic-file.js";
import { decompress } from "./decompress.js";
import { DigestStream, parseDigest, sha256Digest } from "./digest.js";
import { printable } from "./entry-path.js";
import { LayerWriter, type TarEntry } from "./layer-writer.js";
import { StoreError } from "./store-error.js";

export interface UnpackOptions {
  /** `sha256:<hex>` the uncompressed tar must hash to; a mismatch fails the unpack */
  expectedDiffId?: string | undefined;
  /** how whiteouts and opaque directories are written: char 0/0 + trusted.overlay.*, or .wh. files + user.overlay.* */
  whiteout: WhiteoutStyle;
  /** running count of uncompressed tar bytes read (the unit of the returned `size`) */
  onProgress?: ((bytes: number) => void) | undefined;
}

export interface UnpackResult {
  /** `sha256:<hex>` of the uncompressed tar */
  diffId: string;
  /** bytes of the uncompressed tar */
  size: number;
}

const BLOCK = 512;

export async function unpackLayer(input: Readable, dest: string, opts: UnpackOptions): Promise<UnpackResult> {
  let tmp: string | null = null;
  let writer: LayerWriter | null = null;
  try {
    const expected = opts.expectedDiffId === undefined ? null : parseDigest(opts.expectedDiffId);
    await refuseExisting(dest);
    tmp = await makeTemp(dest);
    writer = new LayerWriter(tmp, opts.whiteout);
    const { hex, bytes } = await extractInto(input, writer, opts.onProgress);
    const diffId = sha256Digest(hex);
    if (expected !== null && expected.hex !== hex) {
      throw new StoreError(
        "digest-mismatch",
        `layer digest mismatch: expected ${opts.expectedDiffId}, the layer is ${diffId}`,
      );
    }
    writer.finish();
    writer.close();
    await publish(tmp, dest);
    tmp = null;
    return { diffId, size: bytes };
  } catch (e) {
    input.destroy();
    writer?.close();
    if (tmp !== null) await removeTree(tmp);
    throw e;
  }
}

async function extractInto(
  input: Readable,
  writer: LayerWriter,
  onProgress: ((bytes: number) => void) | undefined,
): Promise<{ hex: string; bytes: number }> {
  let inputError: unknown;
  input.on("error", (e: unknown) => {
    inputError ??= e;
  });
  const hasher = new DigestStream({ onBytes: onProgress });
  const extract = tar.extract();
  const piped = pipeline(decompress(input), hasher, extract).then(
    () => undefined,
    (e: unknown) => e ?? new Error("pipeline failed"),
  );
  const explain = (e: unknown, entry: string | null) => describeFailure(e, entry, inputError);
  let current: string | null = null;
  let end = 0; // offset just past the last entry's data
  try {
    for await (const source of extract) {
      const entry = source as unknown as TarEntry; // see TarHeader
      const header = entry.header;
      current = header.name;
      await writer.add(entry);
      end = (header.byteOffset ?? 0) + (header.type === "directory" ? 0 : padded(header.size ?? 0));
      current = null;
    }
  } catch (e) {
    // Wait for every stage to stop before the caller removes the temp dir. When the entry's
    // stream was merely torn down, the pipeline holds the error that tore it down.
    const failed = await piped;
    throw explain(isTeardown(e) && failed !== undefined ? failed : e, current);
  }
  const failed = await piped;
  if (failed !== undefined) throw explain(failed, null);
  if (hasher.bytes - end < BLOCK) {
    throw new StoreError("corrupt", "truncated tar stream: it ends without the end-of-archive marker");
  }
  return { hex: hasher.hex, bytes: hasher.bytes };
}

/** StoreErrors, the input's errors and errno-shaped errors as they are; tar-stream's in words. */
function describeFailure(e: unknown, entry: string | null, inputError: unknown): unknown {
  if (e instanceof StoreError || e === inputError || errorCode(e) !== undefined || !(e instanceof Error)) return e;
  const where = entry === null ? "" : ` inside entry '${printable(entry)}'`;
  if (/unexpected end of data/i.test(e.message)) {
    return new StoreError("corrupt", `truncated tar stream: the data ends${where}`, {
      cause: e,
      entry: entry ?? undefined,
    });
  }
  return new StoreError("corrupt", `corrupt tar stream${where}: ${e.message}`, { cause: e, entry: entry ?? undefined });
}

/** The error a stream reports when it was destroyed because something else failed. */
function isTeardown(e: unknown): boolean {
  const code = errorCode(e);
  return code === "STREAM_DESTROYED" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

async function refuseExisting(dest: string): Promise<void> {
  try {
    await lstat(dest);
  } catch (e) {
    if (hasCode(e, "ENOENT")) return;
    throw e;
  }
  throw new StoreError("conflict", `cannot unpack into ${dest}: it already exists`, { path: dest });
}

async function makeTemp(dest: string): Promise<string> {
  try {
    return await mkdtemp(`${dest}.partial-`);
  } catch (e) {
    if (!hasCode(e, "ENOENT", "ENOTDIR")) throw e;
    throw new StoreError("not-found", `cannot unpack into ${dest}: ${dirname(dest)} is not a directory`, {
      path: dest,
      cause: e,
    });
  }
}

/** Renames the finished layer into place without replacing anything, and makes that durable. */
async function publish(tmp: string, dest: string): Promise<void> {
  try {
    renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE);
  } catch (e) {
    if (hasCode(e, "EEXIST", "ENOTEMPTY")) {
      throw new StoreError("conflict", `cannot unpack into ${dest}: it appeared while unpacking`, { path: dest });
    }
    if (!hasCode(e, "EINVAL")) throw e;
    // A filesystem without RENAME_NOREPLACE: check, then rename (a tiny window, not a silent replace of content).
    await refuseExisting(dest);
    await rename(tmp, dest);
  }
  try {
    await syncDir(dirname(dest));
  } catch (e) {
    await removeTree(dest);
    throw e;
  }
}

/**
 * Removes a partial layer. Directory modes were applied last, so a read-only directory can stop
 * a non-root removal: then make directories writable (never following symlinks) and retry.
 */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (e) {
    if (!hasCode(e, "EACCES", "EPERM")) throw e;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
  }
}
