/**
 * st_ino numbers for union objects.
 *
 * When every layer lives on one filesystem the real inode number is used, as overlayfs does:
 * numbers are stable across mounts and hard links share them. Objects on other filesystems get
 * numbers allocated downward from the top of the 32-bit range (the fuse-native binding carries
 * st_ino as 32 bits), remembered per (st_dev, st_ino) so they never collide with each other and
 * stay fixed for the life of the mount.
 */
export interface InodeMap {
  map(dev: bigint, ino: bigint): bigint;
}

const INO_LIMIT = 1n << 32n;

export class SameFsInodeMap implements InodeMap {
  private readonly primaryDev: bigint;
  private readonly foreign = new Map<string, bigint>();
  private nextForeign = INO_LIMIT - 1n;

  constructor(primaryDev: bigint) {
    this.primaryDev = primaryDev;
  }

  map(dev: bigint, ino: bigint): bigint {
    if (dev === this.primaryDev && ino < INO_LIMIT && ino < this.nextForeign) return ino;
    const key = `${dev}:${ino}`;
    let mapped = this.foreign.get(key);
    if (mapped === undefined) {
      mapped = this.nextForeign;
      this.nextForeign -= 1n;
      this.foreign.set(key, mapped);
    }
    return mapped;
  }
}
