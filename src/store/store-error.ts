/**
 * StoreError: the one error class of the layer store, shaped like Node's own errors (`code`,
 * plus `path` when a file is concerned) with a `kind` callers switch on.
 *
 * Kinds:
 * - hostile-entry    a tar entry that must not be extracted (escapes, links out, duplicates, ...)
 * - digest-mismatch  content does not hash to the digest it was announced with
 * - corrupt          a truncated or malformed stream (tar, gzip, zstd) or digest string
 * - unsupported      valid input we cannot represent (sparse files, other digest algorithms, ...)
 * - not-found        a layer, image or directory that does not exist
 * - in-use           a layer or container still referenced
 * - conflict         the target already exists
 *
 * Messages are one line, name the entry or path and the problem, and are fit for the CLI to print
 * as they are.
 */
export type StoreErrorKind =
  | "hostile-entry"
  | "digest-mismatch"
  | "corrupt"
  | "unsupported"
  | "not-found"
  | "in-use"
  | "conflict";

export interface StoreErrorDetails {
  /** The tar entry name as it appeared in the archive (untrusted text, for messages only). */
  entry?: string;
  path?: string;
  cause?: unknown;
}

export class StoreError extends Error {
  readonly kind: StoreErrorKind;
  /** `ERR_STORE_<KIND>`, e.g. ERR_STORE_HOSTILE_ENTRY: not an errno, so toErrno() logs it as EIO. */
  readonly code: string;
  readonly entry: string | undefined;
  readonly path: string | undefined;

  constructor(kind: StoreErrorKind, message: string, details: StoreErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "StoreError";
    this.kind = kind;
    this.code = `ERR_STORE_${kind.toUpperCase().replace("-", "_")}`;
    this.entry = details.entry;
    this.path = details.path;
  }
}

export function isStoreError(e: unknown, kind?: StoreErrorKind): e is StoreError {
  return e instanceof StoreError && (kind === undefined || e.kind === kind);
}
