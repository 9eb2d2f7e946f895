/**
 * The layer stack of one mount: an optional writable upper on top of read-only lowers.
 *
 * Order is top-down: `lowers[0]` is the topmost lower (the leftmost in `lowerdir=`). Lowers never
 * change while mounted, so facts about them may be cached; the upper changes only through the
 * mount. A Branch names one object's location inside one layer (`rel` is "" for the root).
 */
import { lstat, mkdir } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { hasCode, UserError } from "../errors.js";
import { defaultWorkDir } from "../format/default-work-dir.js";

export interface Layer {
  /** 0 for the upper (if any), then 1.. for lowers top-down; used as a cache key. */
  readonly index: number;
  readonly root: string;
  readonly writable: boolean;
  readonly dev: bigint;
}

export interface LayerStack {
  readonly upper: Layer | null;
  readonly lowers: readonly Layer[];
  readonly work: string | null;
}

export interface Branch {
  readonly layer: Layer;
  /** Path relative to the layer root, "" for the root itself. */
  readonly rel: string;
}

export function realPath(branch: Branch): string {
  return branch.rel === "" ? branch.layer.root : join(branch.layer.root, branch.rel);
}

export function childBranch(branch: Branch, name: string): Branch {
  return { layer: branch.layer, rel: branch.rel === "" ? name : `${branch.rel}/${name}` };
}

export interface StackSpec {
  lowers: readonly string[];
  upper?: string | undefined;
  work?: string | undefined;
}

/** Validates the directories and builds the stack; every problem is one UserError line. */
export async function openStack(spec: StackSpec): Promise<LayerStack> {
  if (spec.lowers.length === 0) throw new UserError("at least one lower directory is required");
  if (spec.work !== undefined && spec.upper === undefined) {
    throw new UserError("a work directory needs an upper directory");
  }
  let index = 0;
  const upper = spec.upper === undefined ? null : await openLayer(spec.upper, index++, true, "upper");
  const lowers: Layer[] = [];
  for (const dir of spec.lowers) lowers.push(await openLayer(dir, index++, false, "lower"));
  let work: string | null = null;
  if (upper !== null) {
    const dir = spec.work ?? defaultWorkDir(upper.root);
    if (spec.work === undefined) await mkdir(dir, { recursive: true, mode: 0o700 });
    work = (await openLayer(dir, -1, true, "work")).root;
  }
  return { upper, lowers, work };
}

async function openLayer(dir: string, index: number, writable: boolean, role: string): Promise<Layer> {
  if (dir.length === 0) throw new UserError(`empty ${role} directory name`);
  const root = isAbsolute(dir) ? resolve(dir) : resolve(process.cwd(), dir);
  try {
    const st = await lstat(root, { bigint: true });
    if (!st.isDirectory()) throw new UserError(`${role} directory ${dir} is not a directory`);
    return { index, root, writable, dev: st.dev };
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (hasCode(e, "ENOENT", "ENOTDIR")) throw new UserError(`${role} directory ${dir} does not exist`);
    if (hasCode(e, "EACCES")) throw new UserError(`${role} directory ${dir}: permission denied`);
    throw e;
  }
}
