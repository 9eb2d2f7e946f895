/**
 * `--image IMG`: the image's layers from the layer store, and the defaults its OCI config gives
 * a run (Env, Entrypoint + Cmd, WorkingDir, User), applied as docker applies them. The store
 * is imported lazily: runs on plain --lower directories never load it.
 */
import { UserError } from "../errors.js";

export interface ImageDefaults {
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir?: string;
  user?: string;
}

export interface ImageSource {
  /** topmost first */
  lowers: string[];
  defaults: ImageDefaults;
}

export async function openImage(image: string, store?: string): Promise<ImageSource> {
  const [{ LayerStore }, { storeRoot }, { StoreError }] = await Promise.all([
    import("../store/layer-store.js"),
    import("../store/store-root.js"),
    import("../store/store-error.js"),
  ]);
  try {
    const layers = await LayerStore.open(storeRoot(store));
    const record = await layers.requireImage(image);
    return { lowers: layers.lowerDirs(record.layers), defaults: imageDefaults(record.config) };
  } catch (e) {
    if (e instanceof StoreError) throw new UserError(`run: ${e.message}`);
    throw e;
  }
}

/** The run defaults in an OCI image config (`config.Env`, `config.Cmd`, ...). */
export function imageDefaults(config: Record<string, unknown>): ImageDefaults {
  const c = (config.config ?? {}) as Record<string, unknown>;
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  const text = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
  const out: ImageDefaults = { env: strings(c.Env), entrypoint: strings(c.Entrypoint), cmd: strings(c.Cmd) };
  const workingDir = text(c.WorkingDir);
  const user = text(c.User);
  if (workingDir !== undefined) out.workingDir = workingDir;
  if (user !== undefined) out.user = user;
  return out;
}

/** docker's rule: ENTRYPOINT, then the given command or else CMD. */
export function imageCommand(defaults: ImageDefaults, given: readonly string[]): string[] {
  const command = [...defaults.entrypoint, ...(given.length > 0 ? given : defaults.cmd)];
  if (command.length === 0) throw new UserError("run: no command given, and the image has no Cmd or Entrypoint");
  return command;
}
