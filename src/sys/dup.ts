/**
 * dup3(2), which Node lacks: puts the open file behind one fd under another fd's number in one
 * step, so a thread using that number sees the old file or the new one, never a closed or
 * reused number. The number keeps close-on-exec, as every fd Node opens has it.
 */
import type { KoffiFunc } from "koffi";
import { check, libc } from "./libc.js";

const O_CLOEXEC = 0o2000000;

const dup3Fn = libc.func("int dup3(int oldfd, int newfd, int flags)") as KoffiFunc<
  (oldfd: number, newfd: number, flags: number) => number
>;

/** Makes `target` refer to the open file `source` refers to; `target`'s old file is closed. */
export function replaceFd(source: number, target: number): void {
  check(dup3Fn(source, target, O_CLOEXEC), "dup3");
}
