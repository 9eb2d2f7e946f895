/**
 * overlayfs's mount options: one string (mount(2) data, `mount -o`, fuse-overlayfs's `-o`) or a
 * list of options (containerd's Mount.options).
 *
 * The kernel's rules: options are split on `,` and `lowerdir=` on `:`; a backslash escapes the
 * next character, whatever it is, and is dropped from the path (in `upperdir=` and `workdir=`
 * as well). So a path goes in with `\` before `\`, `:` and `,`, and is read back by the same
 * rules; a lone trailing backslash stays, as the kernel keeps it. The kernel shows the options in
 * /proc/self/mountinfo as they were given, escapes included, under mountinfo's own octal escapes
 * (which src/sys/mountinfo.ts removes).
 */

export function escapeOverlayPath(path: string): string {
  return path.replace(/[\\:,]/g, (c) => `\\${c}`);
}

/** Drops one level of escapes: `\x` is `x`. */
export function unescapeOverlayPath(text: string): string {
  return text.replace(/\\(.)/gs, "$1");
}

/** Splits on `sep` where it is not escaped; the escapes stay for the next pass. */
function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A `lowerdir=` value (or unionfs's LOWER1:LOWER2 argument) as paths, topmost first. */
export function splitLowerDirs(value: string): string[] {
  return splitUnescaped(value, ":").map(unescapeOverlayPath);
}

export interface OverlayDirs {
  /** topmost first, as `lowerdir=` lists them */
  lowers: readonly string[];
  upper?: string | undefined;
  work?: string | undefined;
}

/** `lowerdir=`, then `upperdir=` and `workdir=` when given, each its own option, paths escaped. */
export function overlayDirOptions(dirs: OverlayDirs): string[] {
  const options = [`lowerdir=${dirs.lowers.map(escapeOverlayPath).join(":")}`];
  if (dirs.upper !== undefined) options.push(`upperdir=${escapeOverlayPath(dirs.upper)}`);
  if (dirs.work !== undefined) options.push(`workdir=${escapeOverlayPath(dirs.work)}`);
  return options;
}

export interface OverlayOption {
  key: string;
  /** unescaped; undefined for a flag such as `ro` */
  value: string | undefined;
  /** the option as written, escapes included */
  text: string;
}

export interface ParsedOverlayOptions {
  lowerdir?: string[];
  upperdir?: string;
  workdir?: string;
  /** every other option, in order */
  others: OverlayOption[];
}

/**
 * Reads option strings (each may hold several options); a later `lowerdir=`, `upperdir=` or
 * `workdir=` replaces an earlier one. Empty options are skipped, as the kernel skips them.
 */
export function parseOverlayOptions(data: string | readonly string[]): ParsedOverlayOptions {
  const out: ParsedOverlayOptions = { others: [] };
  for (const text of typeof data === "string" ? [data] : data) {
    for (const opt of splitUnescaped(text, ",")) {
      if (opt.length === 0) continue;
      const eq = opt.indexOf("=");
      const key = eq < 0 ? opt : opt.slice(0, eq);
      const raw = eq < 0 ? undefined : opt.slice(eq + 1);
      if (key === "lowerdir" && raw !== undefined) out.lowerdir = splitLowerDirs(raw);
      else if (key === "upperdir" && raw !== undefined) out.upperdir = unescapeOverlayPath(raw);
      else if (key === "workdir" && raw !== undefined) out.workdir = unescapeOverlayPath(raw);
      else out.others.push({ key, value: raw === undefined ? undefined : unescapeOverlayPath(raw), text: opt });
    }
  }
  return out;
}
