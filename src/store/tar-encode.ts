/**
 * Deterministic tar headers for the layer tars the store writes (changesets, exports).
 *
 * Format: POSIX ustar blocks, with a PAX extended header in front when a field does not fit
 * (a non-ASCII or too long name or link target, a uid/gid, size or mtime out of octal range)
 * or xattrs are to be carried (`SCHILY.xattr.<name>`, as GNU tar, Go's archive/tar and
 * therefore docker and containerd write them). The layout follows Go's archive/tar, which
 * produces nearly every layer in the wild: octal fields zero-padded and NUL-terminated,
 * checksum "%06o\0 ", long names split into ustar prefix + name when ASCII and possible, PAX
 * records sorted by key, the extended header named `<dir>/PaxHeaders.0/<base>`.
 *
 * Everything is bytes: names come straight from the file system and are never re-encoded.
 * Fields that identify the writer or the moment (uname, gname, atime, ctime) are never written,
 * so the same tree always gives the same bytes.
 */

export type TarType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo";

export interface EntryHeader {
  /** the entry's path, relative, "/"-separated; directories end in "/" */
  name: Buffer;
  type: TarType;
  /** permission bits including set-id and sticky bits */
  mode: number;
  uid: number;
  gid: number;
  /** content bytes; 0 for everything but regular files */
  size: number;
  /** whole seconds since the epoch */
  mtime: number;
  /** symlink target or, for hard links, the path of the entry linked to */
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  /** xattrs to record, any order (they are written sorted by name) */
  xattrs?: ReadonlyArray<readonly [string, Buffer]>;
}

export const BLOCK = 512;
/** Two zero blocks end the archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<TarType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};
const PAX_TYPEFLAG = "x";
const NAME_SIZE = 100;
const PREFIX_SIZE = 155;
/** Largest value of an 8-byte octal field (7 digits) and of a 12-byte one (11 digits). */
const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** The header block(s) for one entry: an optional PAX extended header, then the ustar block. */
export function encodeHeader(h: EntryHeader): Buffer {
  const pax: Array<[string, Buffer]> = [];
  const name = ustarName(h.name);
  if (name === null) pax.push(["path", h.name]);
  const link = h.linkname ?? Buffer.alloc(0);
  const linkFits = link.length <= NAME_SIZE && isAscii(link);
  if (!linkFits) pax.push(["linkpath", link]);
  const numeric = (key: string, value: number, max: number): number => {
    if (value >= 0 && value <= max) return value;
    pax.push([key, Buffer.from(String(value))]);
    return 0;
  };
  const uid = numeric("uid", h.uid, MAX_OCTAL_8);
  const gid = numeric("gid", h.gid, MAX_OCTAL_8);
  const size = numeric("size", h.size, MAX_OCTAL_12);
  const mtime = numeric("mtime", h.mtime, MAX_OCTAL_12);
  for (const [key, value] of h.xattrs ?? []) pax.push([`SCHILY.xattr.${key}`, value]);

  const block = Buffer.alloc(BLOCK);
  const [prefix, base] = name ?? [Buffer.alloc(0), asciiTruncated(h.name, NAME_SIZE)];
  base.copy(block, 0);
  octal(block, 100, 8, h.mode & 0o7777);
  octal(block, 108, 8, uid);
  octal(block, 116, 8, gid);
  octal(block, 124, 12, size);
  octal(block, 136, 12, mtime);
  block.write(TYPEFLAG[h.type], 156, "latin1");
  (linkFits ? link : asciiTruncated(link, NAME_SIZE)).copy(block, 157);
  ustarTrailer(block, h.devmajor ?? 0, h.devminor ?? 0, prefix);
  if (pax.length === 0) return block;
  return Buffer.concat([paxHeader(h.name, pax), block]);
}

/** magic, version, device numbers, prefix, then the checksum over the finished block. */
function ustarTrailer(block: Buffer, devmajor: number, devminor: number, prefix: Buffer): void {
  block.write("ustar\u000000", 257, "latin1");
  octal(block, 329, 8, devmajor);
  octal(block, 337, 8, devminor);
  prefix.copy(block, 345);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "latin1");
}

/** The PAX extended header entry (header block + records + padding) for `records`. */
function paxHeader(name: Buffer, records: Array<[string, Buffer]>): Buffer {
  records.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const data = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const block = Buffer.alloc(BLOCK);
  asciiTruncated(paxHeaderName(name), NAME_SIZE).copy(block, 0);
  octal(block, 100, 8, 0);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, data.length);
  octal(block, 136, 12, 0);
  block.write(PAX_TYPEFLAG, 156, "latin1");
  ustarTrailer(block, 0, 0, Buffer.alloc(0));
  return Buffer.concat([block, data, padding(data.length)]);
}

/** "<len> <key>=<value>\n", where len counts the whole record including its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // " ", "=", "\n"
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from("\n")]);
}

/** `a/b/c` -> `a/b/PaxHeaders.0/c`, as Go names it (readers without PAX extract it as a file). */
function paxHeaderName(name: Buffer): Buffer {
  const trimmed = name.at(-1) === 0x2f ? name.subarray(0, -1) : name;
  const slash = trimmed.lastIndexOf(0x2f);
  return Buffer.concat([trimmed.subarray(0, slash + 1), Buffer.from("PaxHeaders.0/"), trimmed.subarray(slash + 1)]);
}

/** [prefix, name] for the ustar fields, or null when the path needs a PAX `path` record. */
function ustarName(path: Buffer): [Buffer, Buffer] | null {
  if (!isAscii(path)) return null;
  if (path.length <= NAME_SIZE) return [Buffer.alloc(0), path];
  // Split at a "/" so that the prefix takes at most 155 bytes and the name at most 100.
  let end = Math.min(path.length, PREFIX_SIZE + 1);
  if (end === path.length && path[end - 1] === 0x2f) end--;
  const i = path.subarray(0, end).lastIndexOf(0x2f);
  const rest = path.length - i - 1;
  if (i <= 0 || rest === 0 || rest > NAME_SIZE || i > PREFIX_SIZE) return null;
  return [path.subarray(0, i), path.subarray(i + 1)];
}

function isAscii(bytes: Buffer): boolean {
  for (const b of bytes) if (b >= 0x80) return false;
  return true;
}

/** The ASCII bytes of `bytes`, cut to `max`: the ustar fallback when PAX carries the real value. */
function asciiTruncated(bytes: Buffer, max: number): Buffer {
  return Buffer.from(bytes.filter((b) => b < 0x80 && b !== 0)).subarray(0, max);
}

/** Zero-padded octal digits and a terminating NUL, filling `size` bytes at `offset`. */
function octal(block: Buffer, offset: number, size: number, value: number): void {
  block.write(`${value.toString(8).padStart(size - 1, "0")}\u0000`, offset, "latin1");
}
