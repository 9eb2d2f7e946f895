/**
 * st_ino numbers for union objects, as kernel overlayfs numbers them.
 *
 * When every layer lives on one filesystem the real inode number is used: numbers are stable
 * across mounts and hard links share them. When the layers span filesystems the numbers are
 * overlayfs's `xino=on` ones: each filesystem gets an id (0 is the upper's, even on a mount
 * without one; the lowers' other filesystems 1, 2, ... in stack order), and a real number goes
 * to the id's place in the top bits, so numbers of different filesystems never collide and stay
 * the same across copy-up (an upper copy reports its origin's number) and remounts. The top
 * bits it takes: enough for the highest id, plus one for the rare real number that already
 * uses them, which gets a number of the mount's own instead (stable for the life of the mount,
 * as the kernel's are), as do objects on a filesystem outside the stack (a mount inside a layer).
 */
export interface InodeMap {
  map(dev: bigint, ino: bigint): bigint;
}

const INO_BITS = 64n;

export class XinoMap implements InodeMap {
  /** st_dev -> filesystem id */
  private readonly fsids = new Map<bigint, bigint>();
  /** how many high bits the ids take (0: one filesystem, real numbers) */
  readonly xinoBits: bigint;
  private readonly shift: bigint;
  private readonly ownNumbers = new Map<string, bigint>();
  private nextOwn = 1n;

  /** @param lowerDevs the lowers' st_dev, top-down */
  constructor(upperDev: bigint | null, lowerDevs: readonly bigint[]) {
    if (upperDev !== null) this.fsids.set(upperDev, 0n);
    let next = 1n;
    for (const dev of lowerDevs) {
      if (!this.fsids.has(dev)) this.fsids.set(dev, next++);
    }
    const filesystems = next; // counting id 0, used or not
    const oneFs = filesystems - (upperDev === null ? 1n : 0n) === 1n;
    this.xinoBits = oneFs ? 0n : BigInt(log2(filesystems - 1n)) + 2n;
    this.shift = INO_BITS - this.xinoBits;
  }

  map(dev: bigint, ino: bigint): bigint {
    const fsid = this.fsids.get(dev);
    if (fsid !== undefined && ino >> this.shift === 0n) {
      return this.xinoBits === 0n ? ino : ino | (fsid << (this.shift + 1n));
    }
    return this.ownNumber(dev, ino);
  }

  /**
   * A number no mapped object can have: with xino bits, id 0's range with the lowest id bit
   * set (as the kernel places its own numbers); on one filesystem, above any real number.
   */
  private ownNumber(dev: bigint, ino: bigint): bigint {
    const key = `${dev}:${ino}`;
    let mapped = this.ownNumbers.get(key);
    if (mapped === undefined) {
      const base = this.xinoBits === 0n ? 1n << (INO_BITS - 1n) : 1n << this.shift;
      mapped = base | this.nextOwn++;
      this.ownNumbers.set(key, mapped);
    }
    return mapped;
  }
}

function log2(n: bigint): number {
  return n.toString(2).length - 1;
}
