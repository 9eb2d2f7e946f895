/**
 * INIT: the first request of a connection, answered before anything else can reach the
 * mount. The reply agrees on the protocol minor (the kernel's, up to what this codec knows)
 * and asks only for features the kernel offered.
 */
import { FsError } from "../errors.js";
import { FUSE_KERNEL_MINOR, FUSE_KERNEL_VERSION, Init, Init2, MAX_PAGES, MAX_WRITE, Size } from "./protocol.js";

/** the oldest minor whose structures this codec writes (FOPEN_NOFLUSH, READDIRPLUS, 64-bit attrs) */
const MIN_KERNEL_MINOR = 31;

/**
 * features asked for whenever the kernel offers them. HANDLE_KILLPRIV_V2: the daemon clears
 * set-id bits on the writes, truncates and opens the kernel flags; in exchange the kernel
 * trusts an inode without them (SB_NOSEC) instead of asking GETXATTR security.capability
 * before every single write.
 */
const WANTED =
  Init.ASYNC_READ |
  Init.ATOMIC_O_TRUNC |
  Init.BIG_WRITES |
  Init.DO_READDIRPLUS |
  Init.READDIRPLUS_AUTO |
  Init.PARALLEL_DIROPS |
  Init.MAX_PAGES |
  Init.CACHE_SYMLINKS |
  Init.HANDLE_KILLPRIV_V2 |
  Init.SETXATTR_EXT |
  Init.INIT_EXT;

export interface Agreed {
  /** the protocol minor both sides speak */
  readonly minor: number;
  /** the INIT flags (low word) in force */
  readonly flags: number;
  readonly flags2: number;
  readonly setxattrExt: boolean;
  /** the kernel reads and writes files opened with a backing id itself */
  readonly passthrough: boolean;
}

export interface InitWishes {
  /** ask for passthrough if offered: the daemon may register backing files (CAP_SYS_ADMIN) */
  readonly passthrough: boolean;
}

/**
 * How deep the file systems under a passthrough mount may stack: the backing files are in the
 * layers, which are not FUSE or overlay mounts themselves (1 keeps room for an overlayfs on top).
 */
const MAX_STACK_DEPTH = 1;

/**
 * The INIT reply's payload for the request body `initIn` (fuse_init_in), written into `out`
 * at `at`; returns what was agreed and the payload's size.
 */
export function answerInit(
  initIn: Buffer,
  out: Buffer,
  at: number,
  wishes: InitWishes,
): { agreed: Agreed; size: number } {
  const major = initIn.readUInt32LE(0);
  const kernelMinor = initIn.readUInt32LE(4);
  if (major !== FUSE_KERNEL_VERSION || kernelMinor < MIN_KERNEL_MINOR) {
    throw new FsError(
      "EPROTO",
      "init",
      undefined,
      `the kernel speaks FUSE ${major}.${kernelMinor}, unionfs needs 7.${MIN_KERNEL_MINOR} or newer`,
    );
  }
  const maxReadahead = initIn.readUInt32LE(8);
  const offered = initIn.readUInt32LE(12);
  const minor = Math.min(kernelMinor, FUSE_KERNEL_MINOR);
  const flags = (offered & WANTED) >>> 0;
  const offered2 = (offered & Init.INIT_EXT) !== 0 ? initIn.readUInt32LE(16) : 0;
  const passthrough = wishes.passthrough && (flags & Init.INIT_EXT) !== 0 && (offered2 & Init2.PASSTHROUGH) !== 0;
  const flags2 = passthrough ? Init2.PASSTHROUGH : 0;
  out.fill(0, at, at + Size.INIT_OUT);
  out.writeUInt32LE(FUSE_KERNEL_VERSION, at);
  out.writeUInt32LE(minor, at + 4);
  out.writeUInt32LE(maxReadahead, at + 8);
  out.writeUInt32LE(flags, at + 12);
  out.writeUInt16LE(64, at + 16); // max_background
  out.writeUInt16LE(48, at + 18); // congestion_threshold
  out.writeUInt32LE(MAX_WRITE, at + 20);
  out.writeUInt32LE(1, at + 24); // time_gran: nanoseconds
  out.writeUInt16LE(MAX_PAGES, at + 28);
  out.writeUInt32LE(flags2, at + 32);
  if (passthrough) out.writeUInt32LE(MAX_STACK_DEPTH, at + 36);
  return {
    agreed: { minor, flags, flags2, setxattrExt: (flags & Init.SETXATTR_EXT) !== 0, passthrough },
    size: Size.INIT_OUT,
  };
}

/** One line for `-d`: the protocol and the features in force. */
export function describeAgreed(agreed: Agreed): string {
  const on = Object.entries(Init)
    .filter(([, bit]) => (agreed.flags & bit) !== 0)
    .map(([name]) => name.toLowerCase());
  if (agreed.passthrough) on.push("passthrough");
  return `FUSE ${FUSE_KERNEL_VERSION}.${agreed.minor}, ${on.join(" ")}`;
}
