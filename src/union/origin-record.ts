/**
 * The origin record of a lower object, as overlayfs writes it on copy-up and names index
 * entries after: the object's file handle plus its filesystem's UUID (struct ovl_fb). Null
 * when the filesystem cannot produce handles.
 */
import { hasCode } from "../errors.js";
import { encodeOrigin } from "../format/origin.js";
import { directoryFilesystemUuid, nameToHandle } from "../sys/file-handle.js";
import type { PathLike } from "../sys/libc.js";
import type { Layer } from "./layer.js";

export class OriginRecords {
  private readonly uuids = new Map<number, Buffer | null>();

  /** The encoded origin of `path`, an object in `layer`. */
  of(path: PathLike, layer: Layer): Buffer | null {
    const uuid = this.layerUuid(layer);
    if (uuid === null) return null;
    try {
      const handle = nameToHandle(path);
      return encodeOrigin({ type: handle.type, uuid, fid: handle.bytes });
    } catch (e) {
      if (hasCode(e, "EOPNOTSUPP", "ENOTSUP", "EPERM", "EOVERFLOW")) return null;
      throw e;
    }
  }

  private layerUuid(layer: Layer): Buffer | null {
    let uuid = this.uuids.get(layer.index);
    if (uuid === undefined) {
      uuid = directoryFilesystemUuid(layer.at);
      this.uuids.set(layer.index, uuid);
    }
    return uuid;
  }
}
