/**
 * The layer stack of one mount: an optional writable upper on top of read-only lowers.
 *
 * Order is top-down: `lowers[0]` is the topmost lower (the leftmost in `lowerdir=`). Lowers never
 * change while mounted, so facts about them may be cached; the upper changes only through the
 * mount. A Branch names one object's location inside one layer (`rel` is "" for the root).
 *
 * Names are bytes throughout the core, as the kernel hands them over and the layers hold them
 * (ByteName): a name, a Branch's `rel`, a node's names and path, a symlink target are JS strings
 * with one char per byte (latin1), so they key maps and compare bytewise, and their length is
 * their length in bytes. They become Buffers only where a system call takes them: realPath and
 * entryPath make every path the core hands the kernel. Transports and tests convert at their
 * edge (a UTF-8 string s is Buffer.from(s, "utf8").toString("latin1")).
 *
 * Each layer is opened before the mount, and a layer the mount will cover (a mount over its own
 * lower root, overlaying /usr onto /usr) is reached through that directory fd from then on
 * (`/proc/self/fd/N/...`): walking its path would lead into the mount itself. Every other layer
 * is reached by its path, resolved when it was opened: a path through /proc/self/fd costs
 * about 2 µs more per system call, and a lookup makes several. See layer-paths.ts for paths
 * longer than PATH_MAX.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readlinkSync, realpathSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { hasCode, UserError } from "../errors.js";
import { defaultWorkDir } from "../format/default-work-dir.js";
import { joinBytes } from "../layers/probe.js";
import { forgetDeepDirs, layerPath } from "./layer-paths.js";

// biome-ignore lint/suspicious/noControlCharactersInRegex: the whole ASCII range, on purpose
const ASCII = /^[\x00-\x7f]*$/;

/** A name or a relative path in bytes, one char per byte (latin1); see the header. */
export type ByteName = string;

export interface Layer {
  /** 0 for the upper (if any), then 1.. for lowers top-down, -1 for the work dir; a cache key */
  readonly index: number;
  /** the directory as given, made absolute: for messages and checks, never for access */
  readonly root: string;
  /** the directory fd every access goes through */
  readonly fd: number;
  /**
   * the path every access starts from, in ASCII: the directory's real path, or for a layer
   * under the mount point (or with a path that is not ASCII) `/proc/self/fd/<fd>/.`, which does
   * not walk from `/` (the `/.` makes even an l-call on the root reach the directory itself)
   */
  readonly at: string;
  readonly writable: boolean;
  readonly dev: bigint;
}

export interface LayerStack {
  readonly upper: Layer | null;
  readonly lowers: readonly Layer[];
  readonly work: Layer | null;
}

export interface Branch {
  readonly layer: Layer;
  /** Path relative to the layer root, "" for the root itself. */
  readonly rel: ByteName;
}

/** A path that reaches the object a branch names (through the layer's fd; see layer-paths.ts). */
export function realPath(branch: Branch): Buffer {
  return layerPath(branch.layer, branch.rel);
}

/** The path of the entry `name` in the directory at `dir` (a realPath). */
export function entryPath(dir: Buffer, name: ByteName): Buffer {
  return joinBytes(dir, Buffer.from(name, "latin1"));
}

export function childBranch(branch: Branch, name: ByteName): Branch {
  return { layer: branch.layer, rel: branch.rel === "" ? name : `${branch.rel}/${name}` };
}

export interface StackSpec {
  lowers: readonly string[];
  upper?: string | undefined;
  work?: string | undefined;
}

/**
 * Validates the directories and builds the stack; every problem is one UserError line.
 * `mountpoint`: where the union will be mounted; layers at or below it are reached through
 * their fds.
 */
export async function openStack(spec: StackSpec, mountpoint?: string): Promise<LayerStack> {
  if (spec.lowers.length === 0) throw new UserError("at least one lower directory is required");
  if (spec.work !== undefined && spec.upper === undefined) {
    throw new UserError("a work directory needs an upper directory");
  }
  const covering = mountpoint === undefined ? null : realpathSync(mountpoint);
  const opened: Layer[] = [];
  const open = (dir: string, index: number, writable: boolean, role: string) => {
    const layer = openLayer(dir, index, writable, role, covering);
    opened.push(layer);
    return layer;
  };
  try {
    let index = 0;
    const upper = spec.upper === undefined ? null : open(spec.upper, index++, true, "upper");
    const lowers: Layer[] = [];
    for (const dir of spec.lowers) lowers.push(open(dir, index++, false, "lower"));
    let work: Layer | null = null;
    if (upper !== null) {
      const dir = spec.work ?? defaultWorkDir(upper.root);
      if (spec.work === undefined) await mkdir(dir, { recursive: true, mode: 0o700 });
      work = open(dir, -1, true, "work");
    }
    return { upper, lowers, work };
  } catch (e) {
    for (const layer of opened) closeSync(layer.fd);
    throw e;
  }
}

/** Closes the layers' directory fds: the stack is unusable afterwards. */
export function closeStack(stack: LayerStack): void {
  for (const layer of [stack.upper, stack.work, ...stack.lowers]) {
    if (layer === null) continue;
    forgetDeepDirs(layer);
    closeSync(layer.fd);
  }
}

function openLayer(dir: string, index: number, writable: boolean, role: string, covering: string | null): Layer {
  if (dir.length === 0) throw new UserError(`empty ${role} directory name`);
  const root = isAbsolute(dir) ? resolve(dir) : resolve(process.cwd(), dir);
  let fd: number;
  try {
    fd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (e) {
    if (hasCode(e, "ENOENT")) throw new UserError(`${role} directory ${dir} does not exist`);
    if (hasCode(e, "ENOTDIR", "ELOOP")) throw new UserError(`${role} directory ${dir} is not a directory`);
    if (hasCode(e, "EACCES")) throw new UserError(`${role} directory ${dir}: permission denied`);
    throw e;
  }
  const byFd = `/proc/self/fd/${fd}/.`;
  const real = readlinkSync(`/proc/self/fd/${fd}`);
  const covered = covering !== null && (covering === "/" || real === covering || real.startsWith(`${covering}/`));
  // `at` is where byte names are appended (ByteName): a path that is not ASCII would read
  // differently as bytes and as text, so such a layer goes through its fd too
  const byPath = !covered && ASCII.test(real);
  return { index, root, fd, at: byPath ? real : byFd, writable, dev: fstatSync(fd, { bigint: true }).dev };
}
