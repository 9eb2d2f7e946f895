/**
 * Names of the extended attributes overlayfs keeps on upper and lower objects.
 *
 * Two namespaces carry the same vocabulary: `trusted.overlay.*` (the kernel's default, needs
 * CAP_SYS_ADMIN) and `user.overlay.*` (the kernel's `userxattr` mode, used rootless). Both are
 * private to the union: never listed, read or written through the mount.
 */
export const TRUSTED_OVERLAY = "trusted.overlay.";
export const USER_OVERLAY = "user.overlay.";

export type XattrNamespace = typeof TRUSTED_OVERLAY | typeof USER_OVERLAY;

/** Keys under the overlay prefix that unionfs reads or writes. */
export const OverlayKey = {
  /** "y": opaque directory. "x": not opaque, but holds xattr whiteouts (kernel >= 6.8). */
  opaque: "opaque",
  /** on a zero-size regular file: this entry is a whiteout (only honoured in marked dirs). */
  whiteout: "whiteout",
  /** on a directory (kernel 6.7 form of opaque=x): children may be xattr whiteouts. */
  whiteouts: "whiteouts",
  /** on a renamed directory: the path of its origin in the lower layers. */
  redirect: "redirect",
  /** on a copied-up object: a file handle of its lower origin. */
  origin: "origin",
  impure: "impure",
  nlink: "nlink",
  metacopy: "metacopy",
  upper: "upper",
  uuid: "uuid",
} as const;

export function overlayXattr(ns: XattrNamespace, key: string): string {
  return ns + key;
}

/** True for any attribute of either overlay namespace: hidden from users of the mount. */
export function isPrivateXattr(name: string): boolean {
  return name.startsWith(TRUSTED_OVERLAY) || name.startsWith(USER_OVERLAY);
}

export const OPAQUE_YES = "y";
export const OPAQUE_XWHITEOUTS = "x";
