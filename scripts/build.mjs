#!/usr/bin/env node
// Builds dist/ for the npm package: JavaScript and declarations from tsc, then relative `.ts`
// specifiers in the declarations become `.js` (tsc rewrites them in JavaScript only, and Deno,
// unlike tsc, does not map a `.ts` specifier in a .d.ts to its declaration file).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
// Run through `npm run build` (or `npm pack`), which puts node_modules/.bin on the PATH.
execFileSync("tsc", ["-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });

function declarations(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? declarations(path) : e.name.endsWith(".d.ts") ? [path] : [];
  });
}
for (const file of declarations(dist)) {
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(/(from\s+|import\()(["'])(\.\.?\/[^"']*)\.ts\2/g, "$1$2$3.js$2");
  if (fixed !== text) writeFileSync(file, fixed);
}
