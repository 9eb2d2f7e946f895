import { describe, expect, it } from "vitest";
import { UserError } from "../errors.js";
import { parseFuseOverlayfsArgv, parseLowerList, parseOverlayOptions } from "./mount-args.js";

describe("parseLowerList", () => {
  it("splits on unescaped colons only", () => {
    expect(parseLowerList("a:b\\:c:d")).toEqual(["a", "b:c", "d"]);
  });
  it("keeps a literal backslash written as \\\\", () => {
    expect(parseLowerList("a\\\\:b")).toEqual(["a\\", "b"]);
  });
  it("drops the backslash of any other escape, as overlayfs's lowerdir= does", () => {
    expect(parseLowerList("a\\nb")).toEqual(["anb"]);
  });
  it("orders lowers leftmost first (topmost)", () => {
    expect(parseLowerList("/top:/mid:/bottom")).toEqual(["/top", "/mid", "/bottom"]);
  });
  it("refuses empty members", () => {
    expect(() => parseLowerList("/a::/b")).toThrow(UserError);
    expect(() => parseLowerList("")).toThrow(UserError);
  });
});

describe("parseOverlayOptions", () => {
  it("reads the overlay keys, passes mount flags through and reports unknown ones", () => {
    const opts = parseOverlayOptions(["lowerdir=/l1:/l2,upperdir=/u,workdir=/w", "ro,noatime,frobnicate=3"]);
    expect(opts.lowerdir).toEqual(["/l1", "/l2"]);
    expect(opts.upperdir).toBe("/u");
    expect(opts.workdir).toBe("/w");
    expect(opts.passthrough).toEqual(["ro"]);
    expect(opts.unknown).toEqual(["frobnicate=3"]);
    expect(opts.volatile).toBe(false);
  });
  it("reads volatile, which changes what is synced", () => {
    expect(parseOverlayOptions(["lowerdir=/l,volatile"])).toMatchObject({ volatile: true, unknown: [] });
  });
  it("honours escaped commas inside paths", () => {
    expect(parseOverlayOptions(["lowerdir=/a\\,b:/c"]).lowerdir).toEqual(["/a,b", "/c"]);
  });
  it("reads paths as the kernel does: an escaped backslash, then a separator", () => {
    expect(parseOverlayOptions(["lowerdir=/a\\\\:/b,upperdir=/u\\,v,workdir=/w\\:x"])).toMatchObject({
      lowerdir: ["/a\\", "/b"],
      upperdir: "/u,v",
      workdir: "/w:x",
    });
  });
});

describe("parseFuseOverlayfsArgv", () => {
  it("accepts options after the positionals, as mount.fuse passes them", () => {
    const args = parseFuseOverlayfsArgv(["overlay", "/mnt", "-o", "lowerdir=/l,upperdir=/u,workdir=/w"]);
    expect(args.mountpoint).toBe("/mnt");
    expect(args.options.lowerdir).toEqual(["/l"]);
    expect(args.foreground).toBe(false);
  });
  it("-d implies the foreground", () => {
    const args = parseFuseOverlayfsArgv(["-d", "-olowerdir=/l", "/mnt"]);
    expect(args.debug && args.foreground).toBe(true);
  });
  it("requires lowerdir and a mount point", () => {
    expect(() => parseFuseOverlayfsArgv(["-o", "upperdir=/u", "/mnt"])).toThrow(/lowerdir/);
    expect(() => parseFuseOverlayfsArgv(["-o", "lowerdir=/l"])).toThrow(/usage/);
  });
  it("takes --transport NAME and --transport=NAME anywhere, leaving the name to be checked later", () => {
    expect(parseFuseOverlayfsArgv(["-o", "lowerdir=/l", "/mnt"]).transport).toBeUndefined();
    expect(parseFuseOverlayfsArgv(["--transport", "nosuch", "-o", "lowerdir=/l", "/mnt"])).toMatchObject({
      transport: "nosuch",
      mountpoint: "/mnt",
      options: { lowerdir: ["/l"], unknown: [] },
    });
    expect(parseFuseOverlayfsArgv(["src", "/mnt", "-olowerdir=/l", "--transport=x"])).toMatchObject({
      transport: "x",
      mountpoint: "/mnt",
    });
    expect(() => parseFuseOverlayfsArgv(["-o", "lowerdir=/l", "/mnt", "--transport"])).toThrow(
      /^option --transport needs a value$/,
    );
  });
  it("reads transport= in -o as an unknown option: the transport is a flag only", () => {
    const args = parseFuseOverlayfsArgv(["-o", "lowerdir=/l,transport=fuse-native", "/mnt"]);
    expect(args.transport).toBeUndefined();
    expect(args.options.unknown).toEqual(["transport=fuse-native"]);
  });
});
