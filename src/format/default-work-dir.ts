/**
 * Where the work directory goes when none is named: a hidden sibling of the upper
 * (`/x/upper` -> `/x/.upper.work`), so it is on the upper's filesystem in the usual case and
 * outside the upper, where the kernel would otherwise show it as content.
 */
import { basename, dirname, join } from "node:path";

export function defaultWorkDir(upper: string): string {
  return join(dirname(upper), `.${basename(upper)}.work`);
}
