/** Who asked for an operation: new objects belong to the caller's uid/gid, minus its umask. */
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

export const ROOT_CALLER: Caller = { uid: 0, gid: 0, pid: 0, umask: 0 };
