// @ts-check
/**
 * Free page reporting, held off for the length of a run.
 *
 * Some virtual machines (this one: a virtio balloon with free page reporting) hand memory that
 * the guest frees back to the host, which discards it; the next use of such a page costs a
 * fault in the host. Measured here: appending a byte to a 1 GiB lower file copies it up in
 * ~0.3 s when the pages freed by the previous round's upper are reused at once, and in ~1.9 s
 * when three seconds pass first and they have been reported, for kernel overlayfs and
 * fuse-overlayfs alike. A driver that takes longer to mount (unionfs starts a Node daemon)
 * lands in the slow case more often, which has nothing to do with the driver.
 *
 * The knob is the guest kernel's `min_free_ms` (how long a page must stay free before it is
 * reported): raised for the run, restored afterwards. Kernels without it (bare metal, other
 * hypervisors) have nothing to hold off, and the run goes on unchanged.
 */
import { readFileSync, writeFileSync } from "node:fs";

const MIN_FREE_MS = "/sys/module/page_reporting/parameters/min_free_ms";
/** longer than any gap between freeing a round's upper and the next round's writes */
const HOLD_MS = 120_000;

/**
 * Raises `min_free_ms` when this kernel has it. Returns a note for the report and the function
 * that restores the old value, or null when there is nothing to hold off.
 * @returns {{ note: string, restore: () => void } | null}
 */
export function holdPageReporting() {
  let old;
  try {
    old = readFileSync(MIN_FREE_MS, "utf8").trim();
  } catch {
    return null;
  }
  if (Number(old) >= HOLD_MS) return null;
  try {
    writeFileSync(MIN_FREE_MS, String(HOLD_MS));
  } catch (e) {
    return {
      note: `free page reporting could not be held off (${/** @type {Error} */ (e).message}): write-heavy cells may vary with mount time`,
      restore: () => {},
    };
  }
  return {
    note: `free page reporting held off during the run (${MIN_FREE_MS}: ${old} -> ${HOLD_MS}, restored after): freed memory is reused without a host fault, whichever driver mounts faster`,
    restore: () => writeFileSync(MIN_FREE_MS, old),
  };
}
