/**
 * Transparent decompression of a layer blob, chosen by its magic bytes:
 *   1f 8b        gzip  -> node:zlib gunzip (concatenated members included)
 *   28 b5 2f fd  zstd  -> the `zstd -dc` program (Node 20 has no zstd)
 *   anything else      -> passed through unchanged (a plain tar)
 *
 * Invariants: the returned stream ends only after the whole input was decoded successfully (for
 * zstd: after the program exited 0); every decoding failure arrives as one 'error' carrying a
 * StoreError ("corrupt" for a bad or truncated stream, "unsupported" when zstd is missing).
 * Errors of the input itself pass through unchanged. Destroying the returned stream stops the
 * input and kills the zstd process.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { errorCode } from "../errors.js";
import { StoreError } from "./store-error.js";

export type Compression = "gzip" | "zstd" | "none";

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const MAX_STDERR = 4096;

export function sniffCompression(head: Buffer): Compression {
  if (head.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) return "gzip";
  if (head.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return "zstd";
  return "none";
}

export function decompress(input: Readable): Readable {
  const out = new PassThrough();
  // However `out` ends (consumed, or destroyed by its reader), the input is released with it.
  out.once("close", () => input.destroy());
  run(input, out).then(
    () => {
      if (!out.destroyed) out.end();
    },
    (e: unknown) => {
      input.destroy();
      out.destroy(e instanceof Error ? e : new Error(String(e)));
    },
  );
  return out;
}

async function run(input: Readable, out: PassThrough): Promise<void> {
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head = await readHead(iterator, ZSTD_MAGIC.length);
  const source = replay(head, iterator);
  switch (sniffCompression(head)) {
    case "gzip":
      return pipeline(source, createGunzip(), out, { end: false }).catch((e: unknown) => {
        throw isZlibError(e) ? new StoreError("corrupt", `corrupt gzip stream: ${zlibMessage(e)}`, { cause: e }) : e;
      });
    case "zstd":
      return unzstd(source, out);
    case "none":
      return pipeline(source, out, { end: false });
  }
}

/** Reads chunks until at least `n` bytes (or the end of input) are in hand. */
async function readHead(iterator: AsyncIterator<Buffer>, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < n) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    length += next.value.length;
  }
  return Buffer.concat(chunks);
}

async function* replay(head: Buffer, iterator: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (head.length > 0) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  } finally {
    // Stopped early (an error downstream): release the input.
    await iterator.return?.();
  }
}

function isZlibError(e: unknown): boolean {
  return errorCode(e)?.startsWith("Z_") === true;
}

function zlibMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

type ZstdProcess = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * Feeds `source` to `zstd -dc` and its output to `out`. The end of zstd's stdout is not trusted
 * on its own: `out` is ended by the caller only after the exit status said the input was whole.
 */
async function unzstd(source: AsyncIterable<Buffer>, out: PassThrough): Promise<void> {
  const child: ZstdProcess = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    if (stderr.length < MAX_STDERR) stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const feeding = pipeline(source, child.stdin).catch((e: unknown) => {
    kill();
    return e;
  });
  const draining = pipeline(child.stdout, out, { end: false }).catch((e: unknown) => {
    kill();
    return e;
  });
  const [fed, drained, exit] = await Promise.all([feeding, draining, exited]);
  if (exit.error !== undefined) {
    if (errorCode(exit.error) === "ENOENT") {
      throw new StoreError(
        "unsupported",
        "zstd-compressed layer but the zstd program is not installed (apt-get install zstd)",
        { cause: exit.error },
      );
    }
    throw new StoreError("unsupported", `cannot run zstd: ${exit.error.message}`, { cause: exit.error });
  }
  // An input error explains everything after it (zstd then saw a short stream or was killed).
  if (fed !== undefined && !isPipeClosed(fed)) throw fed;
  if (drained !== undefined) throw drained;
  if (exit.code !== 0) {
    const why = stderr.trim().split("\n").pop()?.trim() || `zstd exited with ${exit.code ?? exit.signal}`;
    throw new StoreError("corrupt", `corrupt zstd stream: ${why}`);
  }
  if (fed !== undefined) throw fed;
}

/** zstd stopped reading (it failed, or was killed): its exit status says why. */
function isPipeClosed(e: unknown): boolean {
  const code = errorCode(e);
  return code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}
