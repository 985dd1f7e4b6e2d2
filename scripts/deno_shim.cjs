#!/usr/bin/env node
// node_modules/.bin/deno after a local `npm install` (linked there by scripts/link_deno.mjs).
// `deno task` runs every node_modules/.bin entry as JavaScript, so the native binary the deno
// package links there makes each task that calls `deno` fail ("SyntaxError: Invalid or
// unexpected token"). Run by Deno (inside a task) this starts the same Deno; run by Node (a
// shell, npm scripts) it starts the npm package's native binary. Signals are passed on and the
// exit status is returned, so killing this process kills Deno.
"use strict";
const { spawn } = require("node:child_process");
const { join } = require("node:path");
const process = require("node:process");

const deno = typeof Deno === "object"
  ? process.execPath
  : join(__dirname, "..", "node_modules", "deno", "deno");
const child = spawn(deno, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (error) => {
  console.error(`Cannot start deno as ${deno}: ${error.message} (run npm install)`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  if (signal !== null) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
