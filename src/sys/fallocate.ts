/**
 * fallocate(2), which Node lacks: preallocation (mode 0), FALLOC_FL_KEEP_SIZE, punching holes
 * (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) and the other modes the filesystem supports.
 */
import type { KoffiFunc } from "koffi";
import { check, libc } from "./libc.js";

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;

const fallocateFn = libc.func("int fallocate(int fd, int mode, int64_t offset, int64_t len)") as KoffiFunc<
  (fd: number, mode: number, offset: number, len: number) => number
>;

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  check(fallocateFn(fd, mode, offset, length), "fallocate");
}
