// What gzip costs an export served by streamQuery behind Hono's compress() with compressibleType:
// the 2,000,000-row table (bench_orders_2m, made by bench/formats.ts) as NDJSON and CSV, with and
// without `Accept-Encoding: gzip`, in process (app.request: no network, so the compressor's CPU is
// what differs). Each measurement runs in its own process; runs alternate between runtimes and
// between plain and gzip.
//
//   flock /tmp/sluice-bench.lock deno run -A bench/compress.ts          all runs, writes
//                                                                       bench/results/compress.md
//   <deno run -A | bun> bench/compress.ts --worker <format> <gzip|plain>    one JSON line
//
// Env: RUNS (default 5).
import process from "node:process";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { Hono } from "hono";
import { compress } from "hono/compress";
import postgres from "postgres";
import { compressibleType, streamQuery } from "../lib/hono/mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const QUERY = "select * from bench_orders_2m";

async function worker(format: "ndjson" | "csv", encoding: "gzip" | "plain"): Promise<void> {
  const sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
  const app = new Hono();
  app.use(compress({ contentTypeFilter: compressibleType }));
  app.get("/", (c) => streamQuery(c, sql, QUERY, { format, copy: true }));
  const started = performance.now();
  const res = await app.request("/", {
    headers: encoding === "gzip" ? { "accept-encoding": "gzip" } : {},
  });
  if (encoding === "gzip" && res.headers.get("content-encoding") !== "gzip") {
    throw new Error("the response was not compressed");
  }
  let bytes = 0;
  for await (const chunk of res.body!) bytes += chunk.byteLength;
  const ms = performance.now() - started;
  await sql.end();
  console.log(JSON.stringify({
    runtime: runtimeName(),
    format,
    encoding,
    ms,
    bytes,
    peakRssMb: peakRssMb(),
  }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function main(): void {
  const runs = Number(process.env.RUNS ?? 5);
  const script = "bench/compress.ts";
  const commands = {
    deno: ["./node_modules/.bin/deno", ["run", "-A", script]],
    bun: ["./node_modules/.bin/bun", [script]],
  } as const;
  type Sample = {
    runtime: string;
    format: string;
    encoding: string;
    ms: number;
    bytes: number;
    peakRssMb: number;
  };
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    for (const rt of ["deno", "bun"] as const) {
      for (const format of ["ndjson", "csv"]) {
        for (const encoding of i % 2 ? ["gzip", "plain"] : ["plain", "gzip"]) {
          const [bin, args] = commands[rt];
          const out = execFileSync(bin, [...args, "--worker", format, encoding], {
            encoding: "utf8",
          });
          const sample = JSON.parse(out.trim().split("\n").pop()!) as Sample;
          console.log(JSON.stringify(sample));
          samples.push({ ...sample, runtime: `${rt}#${i}` });
        }
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
  ], {
    encoding: "utf8",
  }).trim();
  const lines = [
    "# Compression cost (bench/compress.ts)",
    "",
    `streamQuery() of the 2,000,000-row table (\`bench_orders_2m\`, through COPY) behind Hono's \`compress({ contentTypeFilter: compressibleType })\`, read in process with and without \`Accept-Encoding: gzip\`; ${runs} runs per cell, alternating, each in its own process; medians, the ratio taken within each run.`,
    "",
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${
      (totalmem() / 2 ** 30).toFixed(0)
    } GiB RAM, PostgreSQL ${pg} on loopback. ${new Date().toISOString().slice(0, 10)}.`,
    "",
    "| runtime | format | plain MB/s | gzip MB/s (of uncompressed) | gzip ÷ plain throughput | bytes sent, gzip ÷ plain | peak RSS plain / gzip MB |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const rt of ["deno", "bun"]) {
    for (const format of ["ndjson", "csv"]) {
      const ratios: number[] = [];
      const plainRate: number[] = [];
      const gzipRate: number[] = [];
      const sizeRatio: number[] = [];
      const rss = { plain: [] as number[], gzip: [] as number[] };
      for (let i = 0; i < runs; i++) {
        const pick = (e: string) =>
          samples.find((s) =>
            s.runtime === `${rt}#${i}` && s.format === format && s.encoding === e
          )!;
        const plain = pick("plain"), gzip = pick("gzip");
        plainRate.push(plain.bytes / plain.ms / 1e3);
        gzipRate.push(plain.bytes / gzip.ms / 1e3);
        ratios.push(plain.ms / gzip.ms);
        sizeRatio.push(gzip.bytes / plain.bytes);
        rss.plain.push(plain.peakRssMb), rss.gzip.push(gzip.peakRssMb);
      }
      lines.push(
        `| ${rt} | ${format} | ${median(plainRate).toFixed(0)} | ${median(gzipRate).toFixed(0)} | ${
          median(ratios).toFixed(2)
        }× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${
          median(sizeRatio).toFixed(2)
        } | ${median(rss.plain).toFixed(0)} / ${median(rss.gzip).toFixed(0)} |`,
      );
    }
  }
  writeFileSync("bench/results/compress.md", lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

if (process.argv.includes("--worker")) {
  const i = process.argv.indexOf("--worker");
  await worker(process.argv[i + 1] as "ndjson" | "csv", process.argv[i + 2] as "gzip" | "plain");
  process.exit(0);
} else {
  main();
}
