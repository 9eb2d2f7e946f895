/**
 * The st_ino kernel overlayfs reports for an object of a layer when mounted with `xino=on`,
 * restated from the kernel (fs/overlayfs/super.c ovl_get_fsid / ovl_get_layers,
 * fs/overlayfs/inode.c ovl_map_dev_ino) so that tests can name inode numbers after layer objects
 * in any filesystem layout. Deliberately written apart from the product's own mapping: it is
 * the oracle's rule, not a copy of the code under test.
 *
 * The rule:
 * - fsid 0 belongs to the upper's filesystem, and is reserved even when there is no upper;
 * - every lower whose filesystem differs from the upper's takes the next fsid (1, 2, ...) when
 *   its filesystem first appears in the lower list, topmost first;
 * - numfs = 1 + the number of distinct lower filesystems other than the upper's; when every
 *   layer shares one filesystem nothing is mapped (real inode numbers);
 * - else xinobits = floor(log2(numfs - 1)) + 2 (one extra bit for the kernel's overflow range)
 *   and `ino` of a layer with fsid f shows as `ino | f << (64 - xinobits + 1)`.
 *
 * The kernel uses 32 high bits instead when every layer has 32-bit file handles (ext4 only);
 * the layouts the tests use always put a tmpfs in the stack, whose handles are not, so the
 * computed width applies. A number already using the high bits makes the kernel fall back to
 * numbers these tests cannot predict: that throws here.
 */

export interface XinoMapping {
  /** high bits taken by the fsid; 0 when all layers share one filesystem */
  readonly bits: number;
  /** fsid of each lower, topmost first */
  readonly fsids: readonly number[];
  /** what overlayfs reports for inode `ino` of lower `layer` (topmost = 0) */
  lower(layer: number, ino: bigint): bigint;
}

/**
 * The mapping for a stack whose lowers (topmost first) live on devices `lowerDevs`, with an
 * upper on `upperDev` or no upper (null).
 */
export function xinoMapping(lowerDevs: readonly bigint[], upperDev: bigint | null): XinoMapping {
  const fsidOf = new Map<bigint, number>();
  if (upperDev !== null) fsidOf.set(upperDev, 0);
  let numfs = 1;
  const fsids = lowerDevs.map((dev) => {
    let fsid = fsidOf.get(dev);
    if (fsid === undefined) {
      fsid = numfs++;
      fsidOf.set(dev, fsid);
    }
    return fsid;
  });
  // the kernel's "numfs - !upper == 1": without an upper, fs[0] is reserved but holds nothing
  const sameFs = numfs - (upperDev === null ? 1 : 0) === 1;
  const bits = sameFs ? 0 : Math.floor(Math.log2(numfs - 1)) + 2;
  const shift = BigInt(64 - bits);
  return {
    bits,
    fsids,
    lower(layer, ino) {
      const fsid = fsids[layer];
      if (fsid === undefined) throw new Error(`no lower layer ${layer} in a stack of ${fsids.length}`);
      if (bits === 0) return ino;
      if (ino >> shift !== 0n) throw new Error(`inode ${ino} of lower ${layer} uses the ${bits} xino bits`);
      return ino | (BigInt(fsid) << (shift + 1n));
    },
  };
}

/**
 * The option every oracle mount adds. Without it, overlayfs over several filesystems reports
 * lower objects under per-filesystem pseudo devices with colliding numbers, which no single-
 * device mount such as unionfs's can match; on one filesystem the kernel ignores it.
 */
export const XINO_ON = "xino=on";
