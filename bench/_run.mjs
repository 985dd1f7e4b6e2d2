#!/usr/bin/env node
// Runs bench/stream_rows.ts for every mode under Deno and Bun, RUNS times each (interleaved, each
// run in its own process), and writes medians + ratios to bench/results/core.md.
// Usage: node bench/_run.mjs [runs]
import { execFileSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";

const runs = Number(process.argv[2] ?? 5);
const bin = { deno: "./node_modules/.bin/deno", bun: "./node_modules/.bin/bun" };
const args = { deno: ["run", "-A", "bench/stream_rows.ts"], bun: ["bench/stream_rows.ts"] };
const modes = ["sluice", "sluice-rows", "cursor1000"];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

console.log(execFileSync(bin.deno, [...args.deno, "setup"], { encoding: "utf8" }).trim());
const results = {};
for (let i = 0; i < runs; i++) {
  for (const rt of ["deno", "bun"]) {
    for (const mode of modes) {
      const out = execFileSync(bin[rt], [...args[rt], mode], { encoding: "utf8" }).trim().split(
        "\n",
      ).pop();
      const r = JSON.parse(out);
      console.log(JSON.stringify(r));
      ((results[rt] ??= {})[mode] ??= []).push(r);
    }
  }
}
const pg = execFileSync("psql", [
  "-h",
  "127.0.0.1",
  "-U",
  "postgres",
  "-Atc",
  "show server_version",
], { encoding: "utf8" }).trim();
const lines = [
  "# Core streaming benchmark (bench/stream_rows.ts)",
  "",
  `2,000,000 rows of ~95 bytes of text (table \`bench_core_2m\`), ${runs} runs per cell, each in its own process, medians.`,
  "`sluice` = `streamBatches()` with defaults (2 MiB target); `sluice-rows` = `streamRows()`;",
  "`cursor1000` = postgres.js `.cursor(1000)`, the fixed-row-count baseline, measured in the same run.",
  "First batch = time from creating the stream to the first batch (pool already warm).",
  "",
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${
    (totalmem() / 2 ** 30).toFixed(0)
  } GiB RAM, PostgreSQL ${pg} on loopback. ${new Date().toISOString().slice(0, 10)}.`,
  "",
  "| runtime | mode | rows/s (median) | × cursor1000 | wall s | first batch ms | peak RSS MB |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
];
for (const rt of Object.keys(results)) {
  const base = median(results[rt].cursor1000.map((r) => r.rowsPerSec));
  for (const mode of modes) {
    const rs = results[rt][mode];
    const rps = median(rs.map((r) => r.rowsPerSec));
    lines.push(
      `| ${rs[0].runtime} | ${mode} | ${rps.toLocaleString("en")} | ${(rps / base).toFixed(2)} | ${
        median(rs.map((r) => r.seconds)).toFixed(2)
      } | ${median(rs.map((r) => r.firstBatchMs)).toFixed(1)} | ${
        median(rs.map((r) => r.peakRssMb)).toFixed(0)
      } |`,
    );
  }
}
writeFileSync("bench/results/core.md", lines.join("\n") + "\n");
console.log(lines.join("\n"));
