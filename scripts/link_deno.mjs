#!/usr/bin/env node
// npm `prepare` (a local `npm install`; never run for users of the package): puts the deno
// package's native binary in place (its launcher does that on first run) and links
// node_modules/.bin/deno to scripts/deno_shim.cjs, which `deno task` can run (see there why).
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "node_modules", "deno");
const link = join(root, "node_modules", ".bin", "deno");
if (process.platform !== "win32" && existsSync(join(pkg, "bin.cjs"))) {
  if (!existsSync(join(pkg, "deno"))) {
    execFileSync(process.execPath, [join(pkg, "bin.cjs"), "--version"], { stdio: "ignore" });
  }
  try {
    lstatSync(link);
    unlinkSync(link);
  } catch {
    // no link yet
  }
  symlinkSync(join("..", "..", "scripts", "deno_shim.cjs"), link);
}
