/**
 * The mount table is read in src/sys/mountinfo.ts; these names stay here for the test harness
 * (src/testing), which imports them from this path.
 */
export { type MountEntry, parseMountInfo } from "../sys/mountinfo.js";
