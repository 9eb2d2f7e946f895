/**
 * Copies a regular file's data for copy-up, by the fastest method the two filesystems allow:
 * a reflink (shared extents), else copy_file_range (in the kernel, within one filesystem),
 * else sendfile (between any two filesystems), else read and write. Every method but the
 * reflink copies the data segments only (SEEK_DATA / SEEK_HOLE), so holes stay holes.
 *
 * A method refused with EXDEV, EOPNOTSUPP, EINVAL, ENOSYS (or ENOTTY, for the reflink ioctl) is
 * dropped for that (source device, destination device) pair for the life of the copier: lowers
 * on another filesystem than the upper cost the failed attempts once, not on every copy-up.
 * Any other error is the copy's and is thrown.
 *
 * `copySync` is the whole copy on the calling thread, for callers that may block (a worker
 * thread serving FUSE); `copy` keeps the event loop serving meanwhile:
 *
 * A volatile copy-up (nothing synced) copies each segment on a worker thread, in as few calls
 * as the kernel takes: the event loop serves other requests meanwhile, and the copy costs one
 * hand-off instead of a turn of the loop every few slices.
 *
 * A durable copy-up syncs its copy before making it visible. Syncing only at the end would write the
 * whole file after copying it (the two take about as long); instead the copy goes in slices,
 * each slice's writeback is started as soon as it is copied and waited for after the next one,
 * so the disk writes while the copy runs and the final sync finds at most one slice left. No
 * read-ahead hints: the kernel's own read-ahead keeps up with the copy's sequential reads.
 */
import { read, readSync, write, writeSync } from "node:fs";
import { promisify } from "node:util";
import { hasCode } from "../errors.js";
import {
  awaitWriteback,
  copyFileRange,
  copyFileRangeAsync,
  ficlone,
  seekData,
  seekHole,
  sendfileAt,
  sendfileAtAsync,
  startWriteback,
} from "../sys/copy.js";

const SLICE = 16 * 1024 * 1024;
/** the read/write fallback's buffer */
const CHUNK = 1024 * 1024;
/** errors that mean "this method cannot copy between these two files", not "the copy failed" */
const REFUSALS = ["EXDEV", "EOPNOTSUPP", "ENOTSUP", "EINVAL", "ENOSYS", "ENOTTY"];

/** One end of a copy: an open file and the device it lives on. */
export interface CopyEnd {
  readonly fd: number;
  readonly dev: bigint;
}

/** Copies up to `len` bytes between explicit offsets; 0 at the end of the source. */
export interface RangeMethod {
  readonly name: string;
  sync(src: number, srcOff: number, dest: number, destOff: number, len: number): number;
  /** the same off the event loop */
  async(src: number, srcOff: number, dest: number, destOff: number, len: number): Promise<number>;
}

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** In the preferred order; the reflink is tried before all of them. */
export const RANGE_METHODS: readonly RangeMethod[] = [
  { name: "copy_file_range", sync: copyFileRange, async: copyFileRangeAsync },
  { name: "sendfile", sync: sendfileAt, async: sendfileAtAsync },
  {
    name: "read/write",
    sync(src, srcOff, dest, destOff, len) {
      const buf = Buffer.allocUnsafe(Math.min(len, CHUNK));
      const n = readSync(src, buf, 0, buf.length, srcOff);
      for (let done = 0; done < n; ) done += writeSync(dest, buf, done, n - done, destOff + done);
      return n;
    },
    async async(src, srcOff, dest, destOff, len) {
      const buf = Buffer.allocUnsafe(Math.min(len, CHUNK));
      const { bytesRead } = await readAsync(src, buf, 0, buf.length, srcOff);
      for (let done = 0; done < bytesRead; ) {
        done += (await writeAsync(dest, buf, done, bytesRead - done, destOff + done)).bytesWritten;
      }
      return bytesRead;
    },
  },
];

/** What a (source device, destination device) pair is copied with, as learnt so far. */
interface PairMethods {
  reflink: boolean;
  /** index into RANGE_METHODS of the first method not refused yet */
  range: number;
}

export class DataCopier {
  private readonly pairs = new Map<string, PairMethods>();

  /**
   * @param writeBack the caller syncs each copy afterwards, so start writing it to disk meanwhile
   * @param methods the range methods in order of preference (tests swap in their own)
   */
  constructor(
    private readonly writeBack: boolean,
    private readonly methods: readonly RangeMethod[] = RANGE_METHODS,
  ) {}

  /** The method the next copy between these devices starts with (for tests and logs). */
  methodFor(srcDev: bigint, destDev: bigint): string {
    const pair = this.pair(srcDev, destDev);
    return pair.reflink ? "reflink" : (this.methods[pair.range]?.name ?? "none");
  }

  /** Copies the first `size` bytes of `src` into `dest` (whose size the caller sets). */
  async copy(src: CopyEnd, dest: CopyEnd, size: number): Promise<void> {
    if (size === 0) return;
    const pair = this.pair(src.dev, dest.dev);
    if (this.tryReflink(pair, src, dest)) return;
    let offset = 0;
    while (offset < size) {
      const data = seekData(src.fd, offset);
      if (data < 0 || data >= size) break;
      const hole = Math.min(seekHole(src.fd, data), size);
      if (this.writeBack) await this.copyWritingBack(pair, src.fd, dest.fd, data, hole);
      else await this.copyOnWorker(pair, src.fd, dest.fd, data, hole);
      offset = hole;
    }
  }

  /** `copy` on the calling thread, start to end. */
  copySync(src: CopyEnd, dest: CopyEnd, size: number): void {
    if (size === 0) return;
    const pair = this.pair(src.dev, dest.dev);
    if (this.tryReflink(pair, src, dest)) return;
    for (let offset = 0; offset < size; ) {
      const data = seekData(src.fd, offset);
      if (data < 0 || data >= size) break;
      const hole = Math.min(seekHole(src.fd, data), size);
      for (let pos = data; pos < hole; ) {
        const n = this.stepSync(pair, src.fd, dest.fd, pos, hole - pos);
        if (n === 0) break;
        pos += n;
      }
      offset = hole;
    }
  }

  /** True when the pair shares extents now; false when it cannot (remembered) and must copy. */
  private tryReflink(pair: PairMethods, src: CopyEnd, dest: CopyEnd): boolean {
    if (!pair.reflink) return false;
    try {
      ficlone(dest.fd, src.fd);
      return true;
    } catch (e) {
      if (!hasCode(e, ...REFUSALS)) throw e;
      pair.reflink = false;
      return false;
    }
  }

  private pair(srcDev: bigint, destDev: bigint): PairMethods {
    const key = `${srcDev}:${destDev}`;
    let pair = this.pairs.get(key);
    if (pair === undefined) {
      pair = { reflink: true, range: 0 };
      this.pairs.set(key, pair);
    }
    return pair;
  }

  /** One call of the pair's current method; a refusal moves the pair on to the next method. */
  private async step(pair: PairMethods, onWorker: boolean, src: number, dest: number, pos: number, len: number) {
    for (;;) {
      const method = this.method(pair);
      try {
        return onWorker ? await method.async(src, pos, dest, pos, len) : method.sync(src, pos, dest, pos, len);
      } catch (e) {
        this.refused(pair, e);
      }
    }
  }

  private stepSync(pair: PairMethods, src: number, dest: number, pos: number, len: number): number {
    for (;;) {
      try {
        return this.method(pair).sync(src, pos, dest, pos, len);
      } catch (e) {
        this.refused(pair, e);
      }
    }
  }

  private method(pair: PairMethods): RangeMethod {
    const method = this.methods[pair.range];
    if (method === undefined) throw new Error("no copy method left to try");
    return method;
  }

  /** Moves the pair on to its next method after a refusal; rethrows anything else, or the last refusal. */
  private refused(pair: PairMethods, e: unknown): void {
    if (!hasCode(e, ...REFUSALS) || pair.range === this.methods.length - 1) throw e;
    pair.range += 1;
  }

  private async copyOnWorker(pair: PairMethods, src: number, dest: number, start: number, end: number) {
    // each call copies as much as the kernel takes at once (~2 GiB, fewer when interrupted)
    for (let pos = start; pos < end; ) {
      const n = await this.step(pair, true, src, dest, pos, end - pos);
      if (n === 0) return;
      pos += n;
    }
  }

  /** In slices: the copy holds the event loop for a slice at most, the wait for writeback yields it. */
  private async copyWritingBack(pair: PairMethods, src: number, dest: number, start: number, end: number) {
    let writing: { offset: number; length: number } | null = null;
    for (let pos = start; pos < end; ) {
      const sliceEnd = Math.min(pos + SLICE, end);
      let copied = 0;
      while (pos + copied < sliceEnd) {
        const n = await this.step(pair, false, src, dest, pos + copied, sliceEnd - pos - copied);
        if (n === 0) break;
        copied += n;
      }
      if (copied === 0) return;
      startWriteback(dest, pos, copied);
      // bounded: one slice on its way to disk while the next is copied
      if (writing !== null) await awaitWriteback(dest, writing.offset, writing.length);
      writing = { offset: pos, length: copied };
      pos += copied;
    }
  }
}
