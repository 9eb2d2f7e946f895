/**
 * Parsing of mount arguments in the two accepted forms:
 *   unionfs mount LOWER1:LOWER2[:...] [UPPER] MOUNTPOINT     (leftmost lower on top)
 *   unionfs [-f] [-d] [--transport NAME] -o lowerdir=A:B[,upperdir=U,workdir=W][,...] [SOURCE] MOUNTPOINT
 * The second is fuse-overlayfs's, so unionfs can serve as a mount program; `--transport` is ours
 * and a flag only (a `transport=` in -o is an unknown option, as fuse-overlayfs would see it). Both read escapes as
 * overlayfs does (src/format/overlay-options.ts): a backslash keeps the next character, so `\:`
 * and `\,` are part of a path. Unknown options are returned so the caller can warn about them.
 */
import { UserError } from "../errors.js";
import {
  escapeOverlayPath,
  parseOverlayOptions as parseOptionStrings,
  splitLowerDirs,
} from "../format/overlay-options.js";

export function parseLowerList(list: string): string[] {
  const lowers = splitLowerDirs(list);
  if (lowers.some((l) => l.length === 0)) throw new UserError(`empty directory in lower list '${list}'`);
  return lowers;
}

export interface OverlayOptions {
  lowerdir?: string[];
  upperdir?: string;
  workdir?: string;
  whiteout?: string;
  /** overlayfs's `volatile`: no syncs */
  volatile: boolean;
  /** options passed on to FUSE as they are (ro, allow_other, ...) */
  passthrough: string[];
  /** options unionfs does not know: warned about and ignored */
  unknown: string[];
}

/** Options the kernel's overlayfs or fuse-overlayfs accept that change nothing here. */
const IGNORED = new Set([
  "rw",
  "dev",
  "suid",
  "exec",
  "async",
  "atime",
  "noatime",
  "relatime",
  "strictatime",
  "nodiratime",
  "redirect_dir",
  "index",
  "metacopy",
  "xino",
  "userxattr",
  "squash_to_root",
  "squash_to_uid",
  "squash_to_gid",
  "static_nlink",
  "noacl",
  "fast_ino",
  "plugins",
  "uidmapping",
  "gidmapping",
  "timeout",
  "threaded",
  "fsync",
  "nfs_export",
  "default_permissions",
  "allow_other",
  "context",
  "fscontext",
  "defcontext",
  "rootcontext",
  "x-systemd",
  "_netdev",
  "nofail",
  "noauto",
  "auto",
]);
const PASSTHROUGH = new Set(["ro", "nosuid", "nodev", "noexec"]);

export function parseOverlayOptions(optionStrings: readonly string[]): OverlayOptions {
  const parsed = parseOptionStrings(optionStrings);
  const out: OverlayOptions = { volatile: false, passthrough: [], unknown: [] };
  if (parsed.lowerdir !== undefined) out.lowerdir = checkLowers(parsed.lowerdir);
  if (parsed.upperdir !== undefined) out.upperdir = parsed.upperdir;
  if (parsed.workdir !== undefined) out.workdir = parsed.workdir;
  for (const { key, value, text } of parsed.others) {
    if (key === "whiteout") out.whiteout = value ?? "";
    else if (key === "volatile") out.volatile = true;
    else if (PASSTHROUGH.has(key)) out.passthrough.push(text);
    else if (!IGNORED.has(key) && !key.startsWith("x-")) out.unknown.push(text);
  }
  return out;
}

function checkLowers(lowers: string[]): string[] {
  if (lowers.some((l) => l.length === 0)) {
    throw new UserError(`empty directory in lower list '${lowers.map(escapeOverlayPath).join(":")}'`);
  }
  return lowers;
}

export interface FuseOverlayfsArgs {
  foreground: boolean;
  debug: boolean;
  /** `--transport NAME`, unchecked; undefined when not given */
  transport?: string | undefined;
  options: OverlayOptions;
  mountpoint: string;
}

/** argv (after the program name) in fuse-overlayfs's form. Options may follow positionals. */
export function parseFuseOverlayfsArgv(argv: readonly string[]): FuseOverlayfsArgs {
  let foreground = false;
  let debug = false;
  let transport: string | undefined;
  const optionStrings: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-f") foreground = true;
    else if (arg === "-d" || arg === "--debug") {
      debug = true;
      foreground = true;
    } else if (arg === "-o") {
      const value = argv[++i];
      if (value === undefined) throw new UserError("option -o needs a value");
      optionStrings.push(value);
    } else if (arg.startsWith("-o")) optionStrings.push(arg.slice(2));
    else if (arg === "--transport") {
      transport = argv[++i];
      if (transport === undefined) throw new UserError("option --transport needs a value");
    } else if (arg.startsWith("--transport=")) transport = arg.slice("--transport=".length);
    else if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith("-")) throw new UserError(`unknown flag ${arg}`);
    else positionals.push(arg);
  }
  const options = parseOverlayOptions(optionStrings);
  if (positionals.length === 0 || positionals.length > 2) {
    throw new UserError(
      "usage: unionfs [-f] [-d] [--transport NAME] -o lowerdir=A:B[,upperdir=U,workdir=W] [SOURCE] MOUNTPOINT",
    );
  }
  if (options.lowerdir === undefined) throw new UserError("missing option lowerdir=");
  return { foreground, debug, transport, options, mountpoint: positionals[positionals.length - 1] as string };
}
