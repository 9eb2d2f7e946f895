import { describe, expect, it } from "vitest";
import {
  escapeOverlayPath,
  overlayDirOptions,
  parseOverlayOptions,
  splitLowerDirs,
  unescapeOverlayPath,
} from "./overlay-options.js";

describe("escapeOverlayPath", () => {
  it("puts a backslash before backslash, colon and comma, and nothing else", () => {
    expect(escapeOverlayPath("/a:b,c\\d e=f")).toBe("/a\\:b\\,c\\\\d e=f");
  });

  it("round-trips through unescapeOverlayPath", () => {
    for (const path of ["/plain", "/a:b", "/a,b", "/a\\", "/\\:\\,", "/x\\y:z,", "/ünï cødé"]) {
      expect(unescapeOverlayPath(escapeOverlayPath(path))).toBe(path);
    }
  });
});

describe("unescapeOverlayPath", () => {
  it("drops the backslash before any character, as the kernel does", () => {
    expect(unescapeOverlayPath("a\\nb")).toBe("anb");
    expect(unescapeOverlayPath("a\\\\b")).toBe("a\\b");
  });

  it("keeps a lone trailing backslash", () => {
    expect(unescapeOverlayPath("a\\")).toBe("a\\");
  });
});

describe("splitLowerDirs", () => {
  it("splits on unescaped colons, topmost first", () => {
    expect(splitLowerDirs("/top:/mid:/bottom")).toEqual(["/top", "/mid", "/bottom"]);
  });

  it("keeps escaped colons and commas in the path", () => {
    expect(splitLowerDirs("a:b\\:c:d\\,e")).toEqual(["a", "b:c", "d,e"]);
  });

  it("reads an escaped backslash before a separator as the end of a path", () => {
    expect(splitLowerDirs("a\\\\:b")).toEqual(["a\\", "b"]);
  });

  it("leaves empty entries for the caller to refuse", () => {
    expect(splitLowerDirs("/a::/b")).toEqual(["/a", "", "/b"]);
  });
});

describe("overlayDirOptions", () => {
  it("escapes every layer path", () => {
    expect(overlayDirOptions({ lowers: ["/l:1", "/l,2"], upper: "/u\\p", work: "/w" })).toEqual([
      "lowerdir=/l\\:1:/l\\,2",
      "upperdir=/u\\\\p",
      "workdir=/w",
    ]);
  });

  it("gives lowerdir= alone for a read-only stack", () => {
    expect(overlayDirOptions({ lowers: ["/a", "/b"] })).toEqual(["lowerdir=/a:/b"]);
  });

  it("parses back to the same paths", () => {
    const dirs = { lowers: ["/x:y", "/a,b\\c", "/plain"], upper: "/u,1:2", work: "/w\\" };
    const parsed = parseOverlayOptions(overlayDirOptions(dirs).join(","));
    expect(parsed).toEqual({ lowerdir: dirs.lowers, upperdir: dirs.upper, workdir: dirs.work, others: [] });
  });
});

describe("parseOverlayOptions", () => {
  it("reads the layer options and keeps the others in order", () => {
    const parsed = parseOverlayOptions(["lowerdir=/l1:/l2,upperdir=/u,workdir=/w", "ro,,index=off"]);
    expect(parsed.lowerdir).toEqual(["/l1", "/l2"]);
    expect(parsed.upperdir).toBe("/u");
    expect(parsed.workdir).toBe("/w");
    expect(parsed.others).toEqual([
      { key: "ro", value: undefined, text: "ro" },
      { key: "index", value: "off", text: "index=off" },
    ]);
  });

  it("honours an escaped comma inside a layer path", () => {
    expect(parseOverlayOptions("lowerdir=/a\\,b:/c,upperdir=/u\\,v").lowerdir).toEqual(["/a,b", "/c"]);
    expect(parseOverlayOptions("upperdir=/u\\,v,workdir=/w").upperdir).toBe("/u,v");
  });

  it("keeps escapes for the second pass: an escaped backslash then a colon splits the lowers", () => {
    expect(parseOverlayOptions("lowerdir=a\\\\:b").lowerdir).toEqual(["a\\", "b"]);
  });

  it("lets a later layer option replace an earlier one", () => {
    expect(parseOverlayOptions(["lowerdir=/a", "lowerdir=/b"]).lowerdir).toEqual(["/b"]);
  });
});
