// Which runtime runs the tests, and how to start a script in a child process of that same
// runtime (Node loads TypeScript through tsx). Not a test file.

/** The runtime the tests run on. */
export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** Arguments for `spawn(process.execPath, …)` that run the TypeScript file `path`. */
export function scriptArgs(path: string, { exposeGc = false } = {}): string[] {
  if (RUNTIME === "deno") {
    return ["run", "-A", ...(exposeGc ? ["--v8-flags=--expose-gc"] : []), path];
  }
  if (RUNTIME === "bun") return ["run", path];
  return [...(exposeGc ? ["--expose-gc"] : []), "--import", "tsx", path];
}
