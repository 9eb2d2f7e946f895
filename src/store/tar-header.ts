/**
 * What a layer entry's tar header says beyond its name and type: owner, mode, times, xattrs.
 *
 * PAX records override the ustar fields (uid/gid above 2097151, sub-second mtimes). Extended
 * attributes come from `SCHILY.xattr.<name>` records (GNU tar, Go's archive/tar, docker,
 * containerd, buildah), else `LIBARCHIVE.xattr.<urlencoded name>` (base64 value).
 *
 * xattr values are bytes (security.capability is a binary struct), but tar-stream decodes PAX
 * values as UTF-8 text, replacing invalid bytes. So this module wraps tar-stream's PAX decoder
 * once, at load, to also keep the raw bytes of every `SCHILY.xattr.*` record on the decoded
 * object (under a symbol; tar-stream copies that object onto `header.pax`). Should a future
 * tar-stream move that function, values fall back to the decoded text, and a value that lost
 * bytes in decoding is refused instead of written wrong; unpack.test.ts pins the round trip.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Header } from "tar-stream";
import { printable } from "./entry-path.js";
import { StoreError } from "./store-error.js";

const SCHILY_XATTR = "SCHILY.xattr.";
const LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";
const RAW_XATTRS = Symbol.for("unionfs.store.rawPaxXattrs");

/**
 * A tar-stream header as extract() really emits it: `type` is null for typeflags it does not
 * know, `linkname` null when empty, and `pax` / `byteOffset` are there (the typings lack them).
 */
export type TarHeader = Omit<Partial<Header>, "name" | "type" | "linkname" | "pax"> & {
  name: string;
  type?: Header["type"] | null;
  linkname?: string | null;
  pax?: PaxRecords | null;
  /** offset of the entry's data in the uncompressed tar */
  byteOffset?: number;
};
type PaxRecords = Record<string, string> & { [RAW_XATTRS]?: Map<string, Buffer> };

export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  /** seconds since the epoch, fractions allowed */
  mtime: number;
  atime: number;
  xattrs: Map<string, Buffer>;
}

export function entryMeta(header: TarHeader): EntryMeta {
  const pax = header.pax ?? {};
  const mtime = paxNumber(header, "mtime") ?? (header.mtime?.getTime() ?? 0) / 1000;
  return {
    mode: (header.mode ?? 0) & 0o7777,
    uid: owner(header, "uid", paxNumber(header, "uid") ?? header.uid ?? 0),
    gid: owner(header, "gid", paxNumber(header, "gid") ?? header.gid ?? 0),
    mtime,
    atime: paxNumber(header, "atime") ?? mtime,
    xattrs: entryXattrs(header.name, pax),
  };
}

/** uid_t / gid_t: 0 .. 2^32-2 ((uid_t)-1 means "unchanged" to chown). */
function owner(header: TarHeader, what: string, id: number): number {
  if (Number.isInteger(id) && id >= 0 && id < 0xffffffff) return id;
  throw new StoreError("corrupt", `entry '${printable(header.name)}': ${what} ${id} is out of range`, {
    entry: header.name,
  });
}

/** PAX records announcing a GNU sparse file, whose data would be extracted as its sparse map. */
export function isSparse(header: TarHeader): boolean {
  const pax = header.pax;
  if (pax === null || pax === undefined) return false;
  return Object.keys(pax).some((k) => k.startsWith("GNU.sparse."));
}

function paxNumber(header: TarHeader, key: string): number | undefined {
  const text = header.pax?.[key];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new StoreError(
      "corrupt",
      `entry '${printable(header.name)}': PAX ${key}='${printable(text)}' is not a number`,
      {
        entry: header.name,
      },
    );
  }
  return value;
}

function entryXattrs(entry: string, pax: PaxRecords): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const raw = pax[RAW_XATTRS];
  for (const [key, text] of Object.entries(pax)) {
    if (key.startsWith(SCHILY_XATTR)) {
      const name = key.slice(SCHILY_XATTR.length);
      const value = raw?.get(key) ?? Buffer.from(text, "utf8");
      if (raw?.get(key) === undefined && text.includes("\uFFFD")) {
        throw new StoreError(
          "unsupported",
          `entry '${printable(entry)}': the value of xattr ${name} could not be read exactly`,
          { entry },
        );
      }
      out.set(name, value);
    }
  }
  for (const [key, text] of Object.entries(pax)) {
    if (!key.startsWith(LIBARCHIVE_XATTR)) continue;
    const name = decodeName(entry, key.slice(LIBARCHIVE_XATTR.length));
    if (!out.has(name)) out.set(name, Buffer.from(text, "base64"));
  }
  for (const name of out.keys()) {
    if (name === "" || name.includes("\0")) {
      throw new StoreError("hostile-entry", `entry '${printable(entry)}': invalid xattr name '${printable(name)}'`, {
        entry,
      });
    }
  }
  return out;
}

function decodeName(entry: string, encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new StoreError(
      "corrupt",
      `entry '${printable(entry)}': malformed LIBARCHIVE.xattr name '${printable(encoded)}'`,
      {
        entry,
      },
    );
  }
}

/** The `SCHILY.xattr.*` records of a PAX block, values as raw bytes. */
export function rawPaxXattrs(block: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let rest = block;
  while (rest.length > 0) {
    // Each record: "<length> <key>=<value>\n", the length counting the whole record.
    const space = rest.indexOf(0x20);
    if (space < 0) break;
    const length = Number.parseInt(rest.toString("latin1", 0, space), 10);
    if (!(length > space + 1) || length > rest.length) break;
    const record = rest.subarray(space + 1, length - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) break;
    const key = record.toString("utf8", 0, eq);
    if (key.startsWith(SCHILY_XATTR)) out.set(key, Buffer.from(record.subarray(eq + 1)));
    rest = rest.subarray(length);
  }
  return out;
}

function keepRawXattrs(): void {
  const require = createRequire(import.meta.filename);
  let headers: { decodePax?: unknown };
  try {
    headers = require(join(dirname(require.resolve("tar-stream")), "headers.js")) as { decodePax?: unknown };
  } catch {
    return;
  }
  const decode = headers.decodePax as ((block: Buffer) => PaxRecords) & { [RAW_XATTRS]?: boolean };
  if (typeof decode !== "function" || decode[RAW_XATTRS] === true) return;
  const wrapped = (block: Buffer): PaxRecords => {
    const pax = decode(block);
    pax[RAW_XATTRS] = rawPaxXattrs(block);
    return pax;
  };
  (wrapped as typeof wrapped & { [RAW_XATTRS]?: boolean })[RAW_XATTRS] = true;
  headers.decodePax = wrapped;
}

keepRawXattrs();
