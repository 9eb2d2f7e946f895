/**
 * Layers as kernel overlayfs leaves them after renames at several depths, for the store's walks:
 * l1 renamed a/b to a/c (a relative redirect), l0 renamed a to x (an absolute one), and the
 * upper renamed x/c to x/d (relative again). Reading x/d must follow all three to find
 * l2's a/b/kept beside l1's a/c/new.
 */
import { join } from "node:path";
import { apply, dir, file, whiteout } from "./fixture.js";

export interface RedirectStack {
  upper: string;
  /** topmost first */
  lowers: string[];
}

export function nestedRedirectStack(root: string): RedirectStack {
  const [upper, l0, l1, l2] = ["upper", "l0", "l1", "l2"].map((d) => join(root, d)) as [string, string, string, string];
  apply(l0, [dir("x", { xattrs: { "trusted.overlay.redirect": "/a" } }), whiteout("a")]);
  apply(l1, [dir("a/c", { xattrs: { "trusted.overlay.redirect": "b" } }), file("a/c/new"), whiteout("a/b")]);
  apply(l2, [dir("a/b"), file("a/b/kept")]);
  apply(upper, [dir("x"), dir("x/d", { xattrs: { "trusted.overlay.redirect": "c" } }), whiteout("x/c")]);
  return { upper, lowers: [l0, l1, l2] };
}
