// @ts-check
/**
 * The built modules the micro benchmarks drive (dist/, so `npm run build` first), typed from
 * their TypeScript sources. Loaded by URL so the type checker reads src/, not the emitted JS.
 */
const load = (/** @type {string} */ path) => import(new URL(`../../dist/${path}`, import.meta.url).href);

/** @type {typeof import("../../src/union/union-fs.js")} */
const unionFs = await load("union/union-fs.js");
/** @type {typeof import("../../src/union/layer.js")} */
const layer = await load("union/layer.js");
/** @type {typeof import("../../src/union/readdir.js")} */
const readdir = await load("union/readdir.js");
/** @type {typeof import("../../src/union/probe.js")} */
const probe = await load("union/probe.js");
/** @type {typeof import("../../src/fuse/path-nodes.js")} */
const pathNodes = await load("fuse/path-nodes.js");
/** @type {typeof import("../../src/sys/xattr.js")} */
const xattr = await load("sys/xattr.js");
/** @type {typeof import("../../src/store/unpack.js")} */
const unpack = await load("store/unpack.js");

export const { UnionFs } = unionFs;
export const { openStack } = layer;
export const { DirMerger, LowerListings } = readdir;
export const { probeEntry } = probe;
export const { PathNodes } = pathNodes;
export const { lgetxattr, lgetxattrAsync } = xattr;
export const { unpackLayer } = unpack;
