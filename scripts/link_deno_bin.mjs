#!/usr/bin/env node
// npm `prepare` (a local `npm install`; never run for users of the package): keeps
// node_modules/.bin/deno pointing at the deno package's JavaScript launcher (bin.cjs). The
// launcher replaces that link by the native binary the first time it runs, and `deno task` runs
// every node_modules/.bin entry as JavaScript, so with the native binary there each task that
// calls `deno` fails with "SyntaxError: Invalid or unexpected token".
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const modules = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules");
const launcher = join(modules, "deno", "bin.cjs");
const link = join(modules, ".bin", "deno");
if (process.platform !== "win32" && existsSync(launcher)) {
  // Let the launcher put the native binary in place once (it then rewrites the link).
  execFileSync(process.execPath, [launcher, "--version"], { stdio: "ignore" });
  const target = join("..", "deno", "bin.cjs");
  let current;
  try {
    current = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : undefined;
  } catch {
    current = undefined;
  }
  if (current !== target) {
    if (existsSync(link) || current !== undefined) unlinkSync(link);
    symlinkSync(target, link);
  }
}
