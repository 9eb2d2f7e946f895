/**
 * The work directory: where new upper objects are assembled before one rename(2) makes them
 * visible, so a crash leaves only work-dir garbage and never a partial object in the upper.
 * It must be on the upper's filesystem (rename cannot cross filesystems). Temps live in
 * `<workdir>/work`, the same subdirectory kernel overlayfs uses, and are removed at mount.
 *
 * A volatile mount (overlayfs's `volatile`: no syncs) leaves `work/incompat/volatile/dirty`
 * behind, in the kernel's layout, and any later mount of that work dir is refused, by the
 * kernel and by us: after a crash its upper may have lost any write, so it should be thrown
 * away; who knows the system did not crash removes the marker.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { errorCode, hasCode, UserError } from "../errors.js";
import type { Layer } from "./layer.js";

/** where overlayfs records features an older mount must not ignore */
const INCOMPAT = "incompat";

export class WorkDir {
  private counter = 0;
  private readonly prefix = `#${process.pid.toString(16)}-${randomBytes(3).toString("hex")}-`;

  private constructor(
    readonly dir: string,
    /** the upper's filesystem, where every object is assembled */
    readonly dev: bigint,
  ) {}

  /**
   * Checks the work dir is on the upper's filesystem and was not left by a volatile mount,
   * clears what a crash left behind, and marks it when this mount is volatile.
   */
  static async prepare(work: Layer, upper: Layer, volatile = false): Promise<WorkDir> {
    const workdir = work.root;
    if (work.dev !== upper.dev) {
      throw new UserError(`work directory ${workdir} is not on the upper directory's filesystem`);
    }
    if (workdir === upper.root || workdir.startsWith(`${upper.root}/`) || upper.root.startsWith(`${workdir}/`)) {
      throw new UserError("work and upper directories must not contain each other");
    }
    const dir = join(work.at, "work");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const incompat = await readdir(join(dir, INCOMPAT)).catch((e: unknown) => {
      // only a missing mark means none: anything else must not lead to the wipe below
      if (hasCode(e, "ENOENT")) return [];
      throw new UserError(`cannot read ${join(workdir, "work", INCOMPAT)}: ${errorCode(e) ?? String(e)}`);
    });
    if (incompat.length > 0) {
      throw new UserError(
        `work directory ${workdir} was mounted with '${incompat.join(",")}' and may hold a damaged upper: ` +
          `start from a new upper and work directory, or remove ${join(workdir, "work", INCOMPAT)} if that mount ended cleanly`,
      );
    }
    for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
    if (volatile) await mkdir(join(dir, INCOMPAT, "volatile", "dirty"), { recursive: true, mode: 0o700 });
    return WorkDir.attach(work);
  }

  /**
   * The prepared work dir of `work`, for one more thread serving the same mount: its temp
   * names have a prefix of their own, so no two threads ever pick the same one.
   */
  static attach(work: Layer): WorkDir {
    return new WorkDir(join(work.at, "work"), work.dev);
  }

  /** A fresh name in the work dir; nothing is created. */
  tempPath(): string {
    this.counter += 1;
    return join(this.dir, `${this.prefix}${this.counter}`);
  }
}
