/**
 * The store in containerd's snapshotter vocabulary. A committed snapshot is an image (its
 * layer stack); an active snapshot is a container (upper + work over an image's layers),
 * named by `key`; a view is a read-only active snapshot. The snapshotter never mounts: it
 * returns mount descriptions, which the CLI (or a runtime) carries out.
 */
import { join } from "node:path";
import { overlayDirOptions } from "../format/overlay-options.js";
import { commitContainer } from "./commit.js";
import type { LayerStore } from "./layer-store.js";
import { StoreError } from "./store-error.js";

export interface Mount {
  type: "overlay";
  source: "overlay";
  options: string[];
}

export interface SnapshotInfo {
  kind: "committed" | "active";
  name: string;
  /** the image an active snapshot sits on; a committed one's bottom layers are its parent */
  parent: string | null;
  created: string;
}

export interface Usage {
  size: number;
  inodes: number;
}

export interface Snapshotter {
  prepare(key: string, parent: string): Promise<Mount[]>;
  view(key: string, parent: string): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  commit(name: string, key: string): Promise<void>;
  remove(key: string): Promise<void>;
  usage(key: string): Promise<Usage>;
  walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void>;
}

export class StoreSnapshotter implements Snapshotter {
  constructor(
    private readonly store: LayerStore,
    private readonly measure: (dir: string) => Promise<Usage>,
  ) {}

  async prepare(key: string, parent: string): Promise<Mount[]> {
    await this.store.createContainer(parent, key);
    return this.mounts(key);
  }

  async view(key: string, parent: string): Promise<Mount[]> {
    const image = await this.store.requireImage(parent);
    if ((await this.store.findContainer(key)) !== null) throw new StoreError("conflict", `snapshot ${key} exists`);
    // A view of a one-layer image would be a single lowerdir, which overlayfs refuses: the
    // kernel needs two lowers or an upper. Bind-mounting the one layer is the caller's choice.
    return [
      {
        type: "overlay",
        source: "overlay",
        options: overlayDirOptions({ lowers: this.store.lowerDirs(image.layers) }),
      },
    ];
  }

  async mounts(key: string): Promise<Mount[]> {
    const c = await this.store.requireContainer(key);
    const dir = this.store.containerDir(c.id);
    return [
      {
        type: "overlay",
        source: "overlay",
        options: overlayDirOptions({
          lowers: this.store.lowerDirs(c.layers),
          upper: join(dir, "upper"),
          work: join(dir, "work"),
        }),
      },
    ];
  }

  async commit(name: string, key: string): Promise<void> {
    await commitContainer(this.store, key, name);
  }

  remove(key: string): Promise<void> {
    return this.store.removeContainer(key);
  }

  async usage(key: string): Promise<Usage> {
    const c = await this.store.requireContainer(key);
    return this.measure(join(this.store.containerDir(c.id), "upper"));
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void> {
    for (const image of await this.store.listImages()) {
      await fn({ kind: "committed", name: image.name, parent: null, created: image.created });
    }
    for (const c of await this.store.listContainers()) {
      await fn({ kind: "active", name: c.name, parent: c.image, created: c.created });
    }
  }
}
