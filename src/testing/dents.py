#!/usr/bin/env python3
"""Lists every directory below each ROOT as getdents64(2) returns it, '.' and '..' included.

Node cannot see d_ino (fs.Dirent has no inode) and `ls -i` may stat instead of trusting d_ino,
so this reads the raw records. Prints a JSON array, one object per ROOT given:
{"rel/dir": [[name, d_ino, d_type], ...] | {"error": CODE}}, with "" for ROOT itself. d_ino is a
decimal string: overlayfs's xino puts an fsid in its top bits, beyond what a JSON reader's doubles
hold exactly. Symlinks are never followed: only entries whose d_type is DT_DIR (or that
lstat as directories when d_type is DT_UNKNOWN) are descended into. Used by snapshot.ts.
"""
import ctypes
import errno
import json
import os
import platform
import stat
import struct
import sys

SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61, "ppc64le": 202, "s390x": 220}[platform.machine()]
DT_UNKNOWN, DT_DIR = 0, 4
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
BUF_SIZE = 1 << 16


def getdents(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    buf = ctypes.create_string_buffer(BUF_SIZE)
    out = []
    try:
        while True:
            n = libc.syscall(ctypes.c_long(SYS_GETDENTS64), ctypes.c_long(fd), buf, ctypes.c_long(BUF_SIZE))
            if n < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e), path)
            if n == 0:
                return out
            raw = buf.raw[:n]
            off = 0
            while off < n:
                ino, _next, reclen, dtype = struct.unpack_from("<QqHB", raw, off)
                name = raw[off + 19 : off + reclen].split(b"\0", 1)[0]
                out.append([os.fsdecode(name), str(ino), dtype])
                off += reclen
    finally:
        os.close(fd)


def walk(root):
    result = {}
    todo = [""]
    while todo:
        rel = todo.pop()
        path = os.path.join(root, rel) if rel else root
        try:
            entries = getdents(path)
        except OSError as e:
            result[rel] = {"error": errno.errorcode.get(e.errno, str(e.errno))}
            continue
        result[rel] = entries
        for name, _ino, dtype in entries:
            if name in (".", ".."):
                continue
            child = f"{rel}/{name}" if rel else name
            if dtype == DT_DIR:
                todo.append(child)
            elif dtype == DT_UNKNOWN:
                try:
                    if stat.S_ISDIR(os.lstat(os.path.join(root, child)).st_mode):
                        todo.append(child)
                except OSError:
                    pass
    return result


if __name__ == "__main__":
    json.dump([walk(root) for root in sys.argv[1:]], sys.stdout)
