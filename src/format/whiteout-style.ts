/**
 * The two ways an upper records deletions, opaque directories and its other private facts:
 *
 * - "chardev": overlayfs's own, a character device 0/0 per whiteout and `trusted.overlay.*`
 *   xattrs, which the kernel reads by default; writing trusted.* needs CAP_SYS_ADMIN over the host.
 * - "file": `.wh.<name>` files (OCI / AUFS) and `user.overlay.*` xattrs, which any owner may
 *   write and the kernel reads with `userxattr`.
 *
 * The device and the namespace go together: an upper with char 0/0 whiteouts but user.* marks
 * would be read by neither kernel mode as it was meant.
 */
import { probeTrustedWhiteout } from "../sys/trusted-whiteout.js";
import { TRUSTED_OVERLAY, USER_OVERLAY, type XattrNamespace } from "./overlay-xattr.js";

export type WhiteoutStyle = "chardev" | "file";
/** "auto": the kernel's style wherever this process can write it */
export type WhiteoutChoice = WhiteoutStyle | "auto";

export const WHITEOUT_CHOICES: readonly WhiteoutChoice[] = ["auto", "chardev", "file"];

export function xattrNamespaceOf(style: WhiteoutStyle): XattrNamespace {
  return style === "chardev" ? TRUSTED_OVERLAY : USER_OVERLAY;
}

/** Resolves "auto" by trying the kernel's style at `freePath`, a free name where it will be written. */
export function resolveWhiteoutStyle(choice: WhiteoutChoice, freePath: string): WhiteoutStyle {
  if (choice !== "auto") return choice;
  return probeTrustedWhiteout(freePath) ? "chardev" : "file";
}
