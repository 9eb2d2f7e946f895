import { describe, expect, it } from "vitest";
import { mountpointsUnder, parseMountInfo, readMountTableSync, unescapeMountField } from "./mountinfo.js";

describe("unescapeMountField", () => {
  it("turns the kernel's octal escapes back into space, tab, newline and backslash", () => {
    expect(unescapeMountField("/a\\040b\\011c\\012d\\134e")).toBe("/a b\tc\nd\\e");
  });

  it("leaves a backslash that starts no octal escape alone", () => {
    expect(unescapeMountField("/a\\b\\12")).toBe("/a\\b\\12");
  });
});

describe("parseMountInfo", () => {
  it("reads every field, with and without optional fields", () => {
    const text = [
      "36 35 98:0 /mnt1 /mnt/par\\040ent rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue",
      "25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
    ].join("\n");
    expect(parseMountInfo(text)).toEqual([
      {
        id: 36,
        parentId: 35,
        root: "/mnt1",
        mountpoint: "/mnt/par ent",
        mountOptions: ["rw", "noatime"],
        fstype: "ext3",
        source: "/dev/root",
        superOptions: ["rw", "errors=continue"],
      },
      {
        id: 25,
        parentId: 20,
        root: "/",
        mountpoint: "/sys/fs/cgroup",
        mountOptions: ["rw", "nosuid"],
        fstype: "cgroup2",
        source: "cgroup2",
        superOptions: ["rw", "nsdelegate"],
      },
    ]);
  });

  it("splits super options before unescaping, so an escaped comma stays inside its option", () => {
    const [entry] = parseMountInfo("1 0 0:1 / /m rw - overlay overlay rw,lowerdir=/a\\134\\054b:/c,uuid=on");
    expect(entry?.superOptions).toEqual(["rw", "lowerdir=/a\\,b:/c", "uuid=on"]);
  });

  it("keeps the fuse subtype and a source with spaces", () => {
    const [entry] = parseMountInfo("9 1 0:50 / /m rw - fuse.unionfs my\\040src rw,user_id=0");
    expect(entry).toMatchObject({ fstype: "fuse.unionfs", source: "my src" });
  });

  it("skips blank and malformed lines", () => {
    expect(parseMountInfo("\ngarbage\n1 2 3\n")).toEqual([]);
  });

  it("reads this process's own table, which has a root mount", () => {
    expect(readMountTableSync().some((e) => e.mountpoint === "/")).toBe(true);
  });
});

describe("mountpointsUnder", () => {
  it("lists a directory's own mount and those below it, not its namesakes", () => {
    const table = parseMountInfo(
      ["1 0 0:1 / /a rw - tmpfs t rw", "2 1 0:2 / /a/b rw - tmpfs t rw", "3 0 0:3 / /ab rw - tmpfs t rw"].join("\n"),
    );
    expect(mountpointsUnder(table, "/a")).toEqual(["/a", "/a/b"]);
  });
});
