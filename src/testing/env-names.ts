/**
 * Which variants of a parameterised suite a run covers (filesystem layouts, transports): a
 * comma-separated list of names in an environment variable, in its order, else all of them.
 * An unknown name is an error naming the known ones: a typo must not quietly test nothing.
 */

/** The names `variable` picks from `known` (all of them when unset or blank); `what` names one in errors. */
export function namesFromEnv<N extends string>(
  variable: string,
  what: string,
  known: readonly N[],
  env: NodeJS.ProcessEnv = process.env,
): N[] {
  const wanted = env[variable];
  if (wanted === undefined || wanted.trim() === "") return [...known];
  return wanted.split(",").map((raw) => {
    const name = raw.trim();
    if (!(known as readonly string[]).includes(name)) {
      throw new Error(`${variable}: unknown ${what} '${name}' (known: ${known.join(", ")})`);
    }
    return name as N;
  });
}
