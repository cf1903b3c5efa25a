/**
 * Polls `f` every 100 ms until it returns something other than undefined, and returns that;
 * throws `<what>: not within <ms> ms` past the deadline. `invariant` runs before every poll (it
 * throws to fail early: "never two leaders while waiting").
 */
export async function until<T>(
  f: () => T | undefined,
  ms: number,
  what: string,
  invariant: () => void = () => {},
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    invariant();
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
