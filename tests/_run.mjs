#!/usr/bin/env node
// Runs the test suite under Deno and under Bun, then prints one line "N passed, M failed" summing
// both. Exits non-zero if either runtime failed or ran no test. Usage: node tests/_run.mjs [files…]
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const files = process.argv.slice(2);
const only = process.env.SLUICE_RUNTIMES?.split(",") ?? ["deno", "bun"];

function run(cmd, args) {
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    child.stdout.on("data", (d) => (out += d, process.stdout.write(d)));
    child.stderr.on("data", (d) => (out += d, process.stderr.write(d)));
    child.on("close", (code) => resolve({ code, out }));
    child.on("error", (e) => resolve({ code: 127, out: String(e) }));
  });
}

// deno prints "ok | 12 passed (3 steps) | 0 failed" (or "FAILED | …"); bun prints " 12 pass" / " 0 fail".
function countDeno(out) {
  const m = [...out.matchAll(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)]
    .pop();
  return m ? { passed: +m[1], failed: +m[2] } : undefined;
}
function countBun(out) {
  const p = [...out.matchAll(/^\s*(\d+) pass$/gm)].pop();
  const f = [...out.matchAll(/^\s*(\d+) fail$/gm)].pop();
  return p ? { passed: +p[1], failed: f ? +f[1] : 0 } : undefined;
}

let passed = 0;
let failed = 0;
let broken = false;
const targets = files.length ? files : ["tests/"];
if (only.includes("deno")) {
  console.log("\n=== deno test ===");
  const { code, out } = await run(bin("deno"), ["test", "-A", "--no-check", ...targets]);
  const c = countDeno(out);
  if (!c) console.error("deno: could not read a test summary"), failed++, broken = true;
  else passed += c.passed, failed += c.failed;
  if (code !== 0 && (!c || c.failed === 0)) failed++, broken = true;
}
if (only.includes("bun")) {
  console.log("\n=== bun test ===");
  const bunTargets = files.length ? files.map((f) => "./" + f.replace(/^\.\//, "")) : ["./tests/"];
  const { code, out } = await run(bin("bun"), ["test", "--timeout", "300000", ...bunTargets]);
  const c = countBun(out);
  if (!c) console.error("bun: could not read a test summary"), failed++, broken = true;
  else passed += c.passed, failed += c.failed;
  if (code !== 0 && (!c || c.failed === 0)) failed++, broken = true;
}
if (broken) console.error("a runtime exited abnormally; counted as a failure");
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
