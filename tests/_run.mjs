#!/usr/bin/env node
// Runs the test suite under Deno, Bun and Node (node --test, TypeScript through tsx), then prints
// one line "N passed, M failed" summing all of them. A runtime that is missing, exits abnormally
// or runs no test counts as a failure and is named. Runs under Node or Deno.
// Usage: node tests/_run.mjs [--runtimes=deno,bun,node] [files…]   (or SLUICE_RUNTIMES=deno,…)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ALL = ["deno", "bun", "node"];
const args = process.argv.slice(2);
const flag = args.find((a) => a.startsWith("--runtimes="));
const files = args.filter((a) => !a.startsWith("--"));
const only = (flag?.slice("--runtimes=".length) ?? process.env.SLUICE_RUNTIMES ?? ALL.join(","))
  .split(",").filter(Boolean);
for (const name of only) {
  if (!ALL.includes(name)) {
    console.error(`Cannot run tests on ${name}: known runtimes are ${ALL.join(", ")}`);
    process.exit(2);
  }
}

// The runtime running this script is used as is; otherwise node_modules/.bin, then the PATH.
const self = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
function find(name) {
  if (name === self) return process.execPath;
  const local = join(root, "node_modules", ".bin", name);
  if (existsSync(local)) return local;
  const probe = spawnSync(name, ["--version"], { stdio: "ignore" });
  return probe.error ? undefined : name;
}

function run(cmd, cmdArgs) {
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(cmd, cmdArgs, { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    child.stdout.on("data", (d) => (out += d, process.stdout.write(d)));
    child.stderr.on("data", (d) => (out += d, process.stderr.write(d)));
    child.on("close", (code) => resolve({ code, out }));
    child.on("error", (e) => resolve({ code: 127, out: String(e) }));
  });
}

// deno prints "ok | 12 passed (3 steps) | 0 failed" (or "FAILED | …"); bun prints " 12 pass" /
// " 0 fail"; node's spec reporter prints "ℹ pass 12" / "ℹ fail 0" (TAP: "# pass 12").
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
function countNode(out) {
  const p = [...out.matchAll(/^(?:ℹ|#) pass (\d+)$/gm)].pop();
  const f = [...out.matchAll(/^(?:ℹ|#) fail (\d+)$/gm)].pop();
  const c = [...out.matchAll(/^(?:ℹ|#) cancelled (\d+)$/gm)].pop();
  return p ? { passed: +p[1], failed: (f ? +f[1] : 0) + (c ? +c[1] : 0) } : undefined;
}

function testFiles(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return testFiles(path);
    return e.isFile() && /_test\.ts$/.test(e.name) ? [path] : [];
  }).sort();
}

const targets = files.length ? files : ["tests/"];
const plans = {
  deno: (bin) => [bin, ["test", "-A", "--no-check", ...targets], countDeno],
  bun: (bin) => [
    bin,
    ["test", "--timeout", "300000", ...targets.map((f) => "./" + f.replace(/^\.\//, ""))],
    countBun,
  ],
  node: (bin) => {
    if (!existsSync(join(root, "node_modules", "tsx"))) return "tsx is not installed (npm install)";
    const nodeFiles = targets.flatMap((t) => t.endsWith("/") ? testFiles(t) : [t]);
    return [
      bin,
      [
        "--import",
        "tsx",
        "--test",
        "--test-force-exit",
        "--test-reporter=spec",
        ...nodeFiles.map((f) => relative(root, join(root, f))),
      ],
      countNode,
    ];
  },
};

let passed = 0;
let failed = 0;
const lines = [];
for (const name of only) {
  console.log(`\n=== ${name} ===`);
  const bin = find(name);
  const plan = bin === undefined
    ? `${name} was not found (looked in node_modules/.bin and on the PATH)`
    : plans[name](bin);
  if (typeof plan === "string") {
    console.error(`${name}: ${plan}`);
    lines.push(`${name}: not run: ${plan}`);
    failed++;
    continue;
  }
  const [cmd, cmdArgs, count] = plan;
  const { code, out } = await run(cmd, cmdArgs);
  const c = count(out);
  if (!c) {
    lines.push(`${name}: no test summary (exit code ${code}); counted as a failure`);
    failed++;
    continue;
  }
  let extra = 0;
  if (code !== 0 && c.failed === 0) extra = 1;
  else if (c.passed === 0 && c.failed === 0) extra = 1;
  passed += c.passed;
  failed += c.failed + extra;
  lines.push(
    `${name}: ${c.passed} passed, ${c.failed} failed` +
      (extra ? ` (+1: ${code !== 0 ? `exit code ${code}` : "ran no test"})` : ""),
  );
}
console.log("\n" + lines.join("\n"));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
