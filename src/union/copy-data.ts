/**
 * Copies a regular file's data for copy-up: a reflink when the filesystem can share extents,
 * else copy_file_range over the data segments only, so holes stay holes. Work is done in
 * slices, and the event loop gets a turn at least every MAX_STALL_MS, so one large copy-up
 * does not stall every other request. Not after every slice: a turn costs ~0.3 ms in the
 * daemon, and a warm 16 MiB slice copies in ~5 ms (64 turns added 8% to a 1 GiB copy-up).
 *
 * A durable copy-up syncs its copy before making it visible. Syncing only at the end would write the
 * whole file after copying it (the two take about as long); instead each slice's writeback is
 * started as soon as it is copied and waited for after the next one, so the disk writes while
 * the copy runs and the final sync finds at most one slice left. No read-ahead hints: the
 * kernel's own read-ahead keeps up with copy_file_range's sequential reads, and a WILLNEED
 * per slice made a cold 1 GiB copy-up slower (0.77 s against 0.61 s with an 8 MiB device
 * read-ahead, equal with 128 KiB).
 */
import { awaitWriteback, copyFileRange, ficlone, seekData, seekHole, startWriteback } from "../sys/copy.js";

const SLICE = 16 * 1024 * 1024;
/** the longest a copy keeps the event loop from other requests, when nothing else yields */
const MAX_STALL_MS = 20;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * `writeBack`: the caller syncs the copy afterwards, so start writing it to disk meanwhile.
 * `maxStallMs`: how long the copy may keep the event loop busy between turns it gives it.
 */
export async function copyData(
  srcFd: number,
  destFd: number,
  size: number,
  writeBack: boolean,
  maxStallMs = MAX_STALL_MS,
): Promise<void> {
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
    await copyRange(srcFd, destFd, data, hole, writeBack, maxStallMs);
    offset = hole;
  }
}

async function copyRange(
  srcFd: number,
  destFd: number,
  start: number,
  end: number,
  writeBack: boolean,
  maxStallMs: number,
) {
  let pos = start;
  let writing: { offset: number; length: number } | null = null;
  let lastTurn = performance.now();
  while (pos < end) {
    const n = copyFileRange(srcFd, pos, destFd, pos, Math.min(SLICE, end - pos));
    if (n === 0) return;
    if (writeBack) startWriteback(destFd, pos, n);
    // bounded: one slice on its way to disk while the next is copied
    if (writing !== null) {
      await awaitWriteback(destFd, writing.offset, writing.length);
      lastTurn = performance.now();
    } else if (performance.now() - lastTurn >= maxStallMs) {
      await yieldToLoop();
      lastTurn = performance.now();
    }
    if (writeBack) writing = { offset: pos, length: n };
    pos += n;
  }
}
