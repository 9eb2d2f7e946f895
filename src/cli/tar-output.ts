/**
 * Where an exported tar goes: `-o FILE` (written to a temp name and renamed when complete), or
 * stdout when it is not a terminal.
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { UserError } from "../errors.js";

export async function writeTarTo(
  output: string | undefined,
  write: (out: Writable) => Promise<unknown>,
): Promise<void> {
  if (output === undefined) {
    if (process.stdout.isTTY) throw new UserError("refusing to write a tar to a terminal: use -o FILE or a redirect");
    await write(process.stdout);
    return;
  }
  const tmp = `${output}.partial`;
  const out = createWriteStream(tmp, { flags: "w" });
  try {
    const done = finished(out);
    await write(out);
    if (!out.writableEnded) out.end();
    await done;
    await rename(tmp, output);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
