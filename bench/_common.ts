// Shared bits for bench scripts (runs under Deno and Bun; runtime globals are fine here).
import process from "node:process";
import { readFileSync } from "node:fs";

/** The database the benchmarks use. */
export const DATABASE_URL: string = process.env.DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/postgres";

/** Peak resident set size of this process so far, in MB (Linux VmHWM). */
export function peakRssMb(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Which runtime this is, for the report. */
export function runtimeName(): string {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.version}`;
}
