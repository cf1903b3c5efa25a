/**
 * The environment the container image gives metalboot (the Dockerfile's `ENV` lines, such as
 * glibc's malloc settings), so that the bench runs it as deployed.
 */
export function dockerfileEnv(dockerfile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of dockerfile.matchAll(/^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$/gm)) env[m[1]!] = m[2]!;
  return env;
}
