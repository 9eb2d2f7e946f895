// Types for the parts of fuse-native 2.2.6 that src/fuse uses (the package ships none).
declare module "fuse-native" {
  interface FuseOpts {
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
  }
  type Signal = (res: number, ...values: unknown[]) => void;
  type NativeHandler = (nativeHandler: Buffer, opCode: number, ...args: unknown[]) => unknown;
  class Fuse {
    constructor(mnt: string, ops: object, opts?: FuseOpts);
    readonly mnt: string;
    readonly opts: FuseOpts;
    protected readonly ops: Record<string, (...args: never[]) => void>;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    protected _fuseOptions(): string;
    protected _makeHandlerArray(): Array<NativeHandler | undefined>;
    protected _op_utimens(signal: Signal, path: string, aLow: number, aHigh: number, mLow: number, mHigh: number): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
  export = Fuse;
}
