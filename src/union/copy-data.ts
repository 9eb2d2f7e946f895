/**
 * Copies a regular file's data for copy-up: a reflink when the filesystem can share extents,
 * else copy_file_range over the data segments only, so holes stay holes. Work is done in
 * slices with a yield in between, so one large copy-up does not stall every other request.
 */
import { copyFileRange, ficlone, seekData, seekHole } from "../sys/copy.js";

const SLICE = 16 * 1024 * 1024;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function copyData(srcFd: number, destFd: number, size: number): Promise<void> {
  if (size === 0) return;
  try {
    ficlone(destFd, srcFd);
    return;
  } catch {
    // not a reflink-capable filesystem (ext4, tmpfs): copy below
  }
  let offset = 0;
  while (offset < size) {
    const data = seekData(srcFd, offset);
    if (data < 0 || data >= size) break;
    const hole = Math.min(seekHole(srcFd, data), size);
    await copyRange(srcFd, destFd, data, hole);
    offset = hole;
  }
}

async function copyRange(srcFd: number, destFd: number, start: number, end: number): Promise<void> {
  let pos = start;
  while (pos < end) {
    const n = copyFileRange(srcFd, pos, destFd, pos, Math.min(SLICE, end - pos));
    if (n === 0) return;
    pos += n;
    if (pos < end) await yieldToLoop();
  }
}
