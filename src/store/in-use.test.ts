import { describe, expect, it } from "vitest";
import { parseMountInfo } from "../sys/mountinfo.js";
import { overlayMountUses } from "./in-use.js";

// As Linux 6.18 prints an overlay mounted with
//   lowerdir=/s/l\:1:/s/l\,2:/s/l\\3,upperdir=/s/u p,workdir=/s/w
// (the options as given, under mountinfo's octal escapes), and a bind mount of /s/x.
const TABLE = parseMountInfo(
  [
    "58 27 0:45 / /mnt rw,relatime - overlay overlay rw,lowerdir=/s/l\\134:1:/s/l\\134\\0542:/s/l\\134\\1343," +
      "upperdir=/s/u\\040p,workdir=/s/w,uuid=on",
    "59 27 8:1 /s/x /bound rw,relatime - ext4 /dev/vda rw",
  ].join("\n"),
);

describe("overlayMountUses", () => {
  it("finds every layer and the work dir of an overlay mount, escapes removed", () => {
    for (const dir of ["/s/l:1", "/s/l,2", "/s/l\\3", "/s/u p", "/s/w"]) {
      expect(overlayMountUses(dir, TABLE)).toBe(true);
    }
  });

  it("does not match a part of a path, or a directory of another filesystem type", () => {
    for (const dir of ["/s/l", "/s/u", "/s/l\\", "/s/x", "/s"]) expect(overlayMountUses(dir, TABLE)).toBe(false);
  });
});
