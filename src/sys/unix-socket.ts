/**
 * A connected pair of Unix stream sockets, and receiving an open file over one of them
 * (SCM_RIGHTS): how the setuid fusermount3 hands a mounted /dev/fuse fd back to an unprivileged
 * daemon (see fusermount.ts). Node's net module can neither make a socketpair nor receive fds.
 *
 * Both ends are close-on-exec, and so is a received fd (MSG_CMSG_CLOEXEC), as Node makes its own
 * fds: a child gets one only when it is passed on purpose (a stdio entry of child_process).
 *
 * recvmsg's `struct msghdr` points at the iovec, the data byte and the control buffer, so all
 * four live in one block of native memory whose address koffi gives us (x86-64 / aarch64
 * layout: 8-byte pointers and size_t, little-endian).
 */
import { closeSync } from "node:fs";
import koffi from "koffi";
import { check, ERRNO, errno, libc } from "./libc.js";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

const socketpairFn = libc.func("int socketpair(int domain, int type, int protocol, void *sv)") as (
  domain: number,
  type: number,
  protocol: number,
  sv: Buffer,
) => number;
const recvmsgFn = libc.func("long recvmsg(int fd, void *msg, int flags)") as (
  fd: number,
  msg: unknown,
  flags: number,
) => number;

/** struct msghdr, then the iovec, the one data byte and the control buffer it points at. */
const MSGHDR = { iov: 16, iovlen: 24, control: 32, controllen: 40, size: 56 } as const;
const IOVEC = MSGHDR.size;
const DATA = IOVEC + 16;
const CONTROL = DATA + 8;
/** CMSG_SPACE for a few fds: room for more than the one expected, so extras can be closed */
const CONTROL_SIZE = 16 + 4 * 8;
/** struct cmsghdr: size_t len, int level, int type, then the data */
const CMSG = { len: 0, level: 8, type: 12, data: 16 } as const;

/** Two connected stream sockets, both close-on-exec. */
export function socketPair(): [number, number] {
  const sv = Buffer.alloc(8);
  check(socketpairFn(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "socketpair");
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

/**
 * Reads one message from `sock` and returns the first fd it carries, or null when the peer
 * closed the socket without sending one (or sent data without an fd). Blocks until one of the
 * two happens.
 */
export function receiveFd(sock: number): number | null {
  const block = koffi.alloc("uint8_t", CONTROL + CONTROL_SIZE);
  try {
    const base = koffi.address(block);
    const view = Buffer.from(koffi.view(block, CONTROL + CONTROL_SIZE));
    view.fill(0);
    view.writeBigUInt64LE(base + BigInt(IOVEC), MSGHDR.iov);
    view.writeBigUInt64LE(1n, MSGHDR.iovlen);
    view.writeBigUInt64LE(base + BigInt(CONTROL), MSGHDR.control);
    view.writeBigUInt64LE(BigInt(CONTROL_SIZE), MSGHDR.controllen);
    view.writeBigUInt64LE(base + BigInt(DATA), IOVEC);
    view.writeBigUInt64LE(1n, IOVEC + 8);
    let n: number;
    do {
      n = recvmsgFn(sock, block, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno() === ERRNO.EINTR);
    check(n, "recvmsg");
    return firstFd(view.subarray(CONTROL, CONTROL + Number(view.readBigUInt64LE(MSGHDR.controllen))));
  } finally {
    koffi.free(block);
  }
}

/** The first fd of an SCM_RIGHTS control message; any further ones are closed. */
function firstFd(control: Buffer): number | null {
  if (control.length < CMSG.data) return null;
  const len = Number(control.readBigUInt64LE(CMSG.len));
  if (control.readInt32LE(CMSG.level) !== SOL_SOCKET || control.readInt32LE(CMSG.type) !== SCM_RIGHTS) return null;
  const count = Math.floor((Math.min(len, control.length) - CMSG.data) / 4);
  if (count < 1) return null;
  for (let i = 1; i < count; i++) closeSync(control.readInt32LE(CMSG.data + 4 * i));
  return control.readInt32LE(CMSG.data);
}
