/**
 * The xattrs a copy-up carries over. One the destination refuses is skipped: user.* cannot be
 * set on symlinks, an LSM may refuse security.*, and another filesystem may not take a
 * namespace or a value that large at all. Each kind of refusal is logged once per attribute
 * name, not once per file.
 */
import { errorCode, hasCode, type Logger } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { type PathLike, pathText } from "../sys/libc.js";
import { lgetxattr, llistxattr, lsetxattr } from "../sys/xattr.js";

/** Copies an object's xattrs, overlay-private ones excepted. */
export class XattrCopier {
  private readonly logged = new Set<string>();

  constructor(private readonly log: Logger) {}

  copy(src: PathLike, dest: PathLike): void {
    for (const name of llistxattr(src)) {
      if (isPrivateXattr(name)) continue;
      const value = lgetxattr(src, name);
      if (value === null) continue;
      try {
        lsetxattr(dest, name, value);
      } catch (e) {
        if (!hasCode(e, ...XATTR_REFUSALS)) throw e;
        this.skipped(name, errorCode(e) ?? "?", src);
      }
    }
  }

  private skipped(name: string, code: string, src: PathLike): void {
    const key = `${name}\0${code}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log(
      `copy-up: the upper refuses xattr ${name} (${code}), first on ${pathText(src)}; skipped wherever it occurs`,
    );
  }
}

/** setxattr failures that mean "not here", not "the copy-up failed" */
const XATTR_REFUSALS = ["EPERM", "EOPNOTSUPP", "ENOTSUP", "E2BIG", "ERANGE", "ENOSPC", "EINVAL"];
