/**
 * Content digests as the OCI image spec writes them (`sha256:<64 lowercase hex>`), and a stream
 * stage that hashes what flows through it.
 *
 * Only sha256 is accepted: it is what every DiffID and layer digest in the wild uses, and a store
 * keyed by digest must not hold the same content under two names. Other well-formed digests
 * (sha512:...) are refused as "unsupported", malformed ones as "corrupt".
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { StoreError } from "./store-error.js";

export interface ParsedDigest {
  algorithm: "sha256";
  hex: string;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;
/** The image spec's digest grammar: algorithm-component ([+._-] algorithm-component)* ":" encoded. */
const DIGEST_FORM = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function sha256Digest(hex: string): string {
  if (!SHA256_HEX.test(hex))
    throw new StoreError("corrupt", `'${hex}' is not a sha256 value (64 lowercase hex digits)`);
  return `sha256:${hex}`;
}

export function parseDigest(digest: string): ParsedDigest {
  if (!DIGEST_FORM.test(digest)) {
    throw new StoreError("corrupt", `malformed digest '${digest}': expected sha256:<64 lowercase hex digits>`);
  }
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (algorithm !== "sha256") {
    throw new StoreError(
      "unsupported",
      `unsupported digest algorithm '${algorithm}' in '${digest}': only sha256 is supported`,
    );
  }
  if (!SHA256_HEX.test(hex)) {
    throw new StoreError("corrupt", `malformed digest '${digest}': a sha256 digest has 64 lowercase hex digits`);
  }
  return { algorithm, hex };
}

export interface DigestStreamOptions {
  /** called with the running byte count after every chunk */
  onBytes?: ((bytes: number) => void) | undefined;
}

/**
 * A pass-through stage computing the sha256 and the length of everything written to it.
 * `hex`, `digest` and `bytes` are final once the stream has flushed (after 'finish').
 *
 * With no consumer attached (no pipe, no 'data' or 'readable' listener) it is a sink that drops
 * what it hashed, so `await pipeline(source, digestStream)` completes instead of stalling on a
 * full read buffer. Attach any consumer before the first write (pipeline() does).
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private readonly onBytes: ((bytes: number) => void) | undefined;
  private result: string | null = null;
  private count = 0;

  constructor(opts: DigestStreamOptions = {}) {
    super();
    this.onBytes = opts.onBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    this.onBytes?.(this.count);
    if (this.hasConsumer()) callback(null, chunk);
    else callback();
  }

  override _flush(callback: TransformCallback): void {
    this.result = this.hash.digest("hex");
    callback();
  }

  /** Bytes seen so far (final after 'finish'). */
  get bytes(): number {
    return this.count;
  }

  /** The lowercase hex sha256 of everything written; throws before the stream has flushed. */
  get hex(): string {
    if (this.result === null) throw new Error("DigestStream: the digest is read before the stream finished");
    return this.result;
  }

  /** `sha256:<hex>` */
  get digest(): string {
    return sha256Digest(this.hex);
  }

  private hasConsumer(): boolean {
    return this.readableFlowing !== null || this.listenerCount("data") > 0 || this.listenerCount("readable") > 0;
  }
}
