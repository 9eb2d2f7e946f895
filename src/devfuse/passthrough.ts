/**
 * FUSE passthrough: the kernel reads and writes an open file's backing file itself, and the
 * daemon sees only the open and the release.
 *
 * Which opens pass through: those whose data is the object's upper copy (a file created, copied
 * up, or upper from the start). A file opened from a lower layer stays with the daemon, which
 * moves it to the copy after a copy-up (src/union/lower-opens.ts); a backing file is fixed for
 * the life of the kernel's file.
 *
 * The kernel keeps one io mode per inode: every open of an inode passes through to one and the
 * same backing file, or none does, and an open that breaks this fails with EIO. So a node's
 * backing id is kept while any of its files is open through it, and a node with a file still
 * open from below keeps its new opens with the daemon (its copy-up came while that file was open).
 *
 * Set-id bits: under killpriv v2 (init.ts) the kernel leaves clearing them to the daemon, on the
 * WRITEs it flags, and a write passed through is never seen. So a file opened for writing by a
 * caller who may not keep them (not root) is served by the daemon, unless its node already
 * passes through (the io mode is the inode's): then the bits go at the open, as its first write
 * would take them.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import type { Logger } from "../errors.js";
import { closeBacking, openBacking } from "../sys/fuse-device.js";

interface NodeOpens {
  /** the connection's backing id, while files of the node pass through */
  backingId: number;
  /** files open through the backing id */
  passthrough: number;
  /** files open with the daemon serving their data */
  served: number;
}

export interface OpenMode {
  /** the backing id to reply with, or null: the daemon serves the file's data */
  readonly backingId: number | null;
  /** the open passes writes through although the caller may not keep set-id bits */
  readonly unguardedWrites: boolean;
}

const SERVED: OpenMode = { backingId: null, unguardedWrites: false };

export class PassthroughOpens {
  private readonly nodes = new Map<bigint, NodeOpens>();
  /** each open file's node and whether it passes through */
  private readonly files = new Map<number, { node: bigint; passthrough: boolean }>();
  /** set once the kernel refused a backing file: it will refuse the next ones too */
  private refused = false;

  /** @param enabled the kernel agreed to passthrough on this connection */
  constructor(
    private readonly devFd: number,
    private readonly enabled: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * A file `fh` of node `node` was just opened; `upperFd` is its fd when its data is the upper
   * copy; `guarded` when it is open for writing by a caller whose writes must clear set-id
   * bits. Returns how the kernel is to reach its data.
   */
  opened(node: bigint, fh: number, upperFd: number | null, guarded: boolean): OpenMode {
    let opens = this.nodes.get(node);
    if (opens === undefined) {
      opens = { backingId: -1, passthrough: 0, served: 0 };
      this.nodes.set(node, opens);
    }
    const through =
      upperFd !== null && opens.served === 0 && (opens.passthrough > 0 || (!guarded && this.backing(opens, upperFd)));
    if (through) opens.passthrough++;
    else opens.served++;
    this.files.set(fh, { node, passthrough: through });
    return through ? { backingId: opens.backingId, unguardedWrites: guarded } : SERVED;
  }

  /** File `fh` was released (or its open failed after `opened`). */
  released(fh: number): void {
    const file = this.files.get(fh);
    if (file === undefined) return;
    this.files.delete(fh);
    const opens = this.nodes.get(file.node);
    if (opens === undefined) return;
    if (file.passthrough) opens.passthrough--;
    else opens.served--;
    if (opens.passthrough === 0 && opens.backingId >= 0) {
      closeBacking(this.devFd, opens.backingId);
      opens.backingId = -1;
    }
    if (opens.passthrough === 0 && opens.served === 0) this.nodes.delete(file.node);
  }

  /** Makes sure `opens` has a backing id, registering the upper copy open as `fd`. */
  private backing(opens: NodeOpens, fd: number): boolean {
    if (opens.backingId >= 0) return true;
    if (!this.enabled || this.refused) return false;
    // The backing file serves every later open of the node, writers too: register it
    // read-write whatever this open asked for (the kernel checks each open's own mode).
    let backingFd = -1;
    try {
      backingFd = openSync(`/proc/self/fd/${fd}`, fsc.O_RDWR);
    } catch {
      // not writable even by the daemon: writes would fail either way
    }
    try {
      opens.backingId = openBacking(this.devFd, backingFd >= 0 ? backingFd : fd);
      return true;
    } catch (e) {
      this.refused = true;
      this.log(`passthrough refused by the kernel, serving file data instead: ${(e as Error).message}`);
      return false;
    } finally {
      if (backingFd >= 0) closeSync(backingFd);
    }
  }
}
