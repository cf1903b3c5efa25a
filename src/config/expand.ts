/**
 * Kubernetes-style `$(VAR)` expansion (the rule of container `args` and `env`): `$(NAME)` is
 * replaced by the variable's value when it is set and left untouched when it is not;
 * `$$(NAME)` is an escaped literal `$(NAME)`.
 */
const REF = /\$\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g;

export function expandString(value: string, env: Readonly<Record<string, string | undefined>>): string {
  return value.replace(REF, (whole, escaped: string | undefined, name: string | undefined) => {
    if (escaped !== undefined) return `$(${escaped})`;
    const v = env[name!];
    return v === undefined ? whole : v;
  });
}

/** The names of `$(VAR)` references left unexpanded in `value` (for error messages). */
export function unresolvedRefs(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(REF)) if (m[2] !== undefined) out.push(m[2]);
  return out;
}

/** Expands every string inside a plain JSON-like value, returning a new value. */
export function expandDeep(value: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof value === 'string') return expandString(value, env);
  if (Array.isArray(value)) return value.map((v) => expandDeep(v, env));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandDeep(v, env);
    return out;
  }
  return value;
}
