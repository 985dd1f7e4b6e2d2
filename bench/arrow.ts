// Arrow output vs. its peers on the formats benchmark's 2,000,000-row table (bench_orders_2m, made
// by bench/formats.ts): postgres.js COPY CSV (the practical limit), sluice's streamArrow (through
// COPY text, and through a cursor), streamCsv and streamNdjson — throughput, first byte, peak RSS
// and bytes on the wire; then how long Polars takes to load our Arrow against our CSV of the same
// rows. Each measurement runs in its own child process; runtimes and configurations alternate.
//
//   deno run -A bench/arrow.ts              run everything, write bench/results/arrow.json and .md
//   <deno run -A | bun> bench/arrow.ts --worker <config>    one measurement (JSON line)
//
// Env: RUNS (default 5), RUNTIMES (deno,bun). Wrap in `flock /tmp/sluice-bench.lock`.
import process from "node:process";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { streamCsv, streamNdjson } from "../mod.ts";
import { streamArrow } from "../lib/arrow/mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TABLE = "bench_orders_2m";
const QUERY = `select * from ${TABLE}`;

const CONFIGS = {
  "copy-csv": "postgres.js COPY … TO STDOUT (FORMAT csv) .readable()",
  "sluice-arrow": "sluice streamArrow() (COPY text)",
  "sluice-arrow-cursor": "sluice streamArrow({ copy: false }) (cursor)",
  "sluice-csv": "sluice streamCsv()",
  "sluice-ndjson": "sluice streamNdjson()",
  "load": "Polars: load our Arrow vs our CSV (in memory)",
} as const;
type Config = keyof typeof CONFIGS;
const MAIN: readonly Config[] = ["copy-csv", "sluice-arrow", "sluice-csv"];
const EXTRA_RUNS = 3;

interface Sample {
  config: Config;
  runtime: string;
  rows: number;
  bytes: number;
  ms: number;
  ttfbMs: number;
  peakRssMb: number;
  arrowLoadMs?: number;
  csvLoadMs?: number;
}

async function drain(
  stream: AsyncIterable<Uint8Array>,
  keep?: Uint8Array[],
): Promise<{ bytes: number; ttfbMs: number; ms: number }> {
  const started = performance.now();
  let ttfbMs = -1;
  let bytes = 0;
  for await (const chunk of stream) {
    if (ttfbMs < 0) ttfbMs = performance.now() - started;
    bytes += chunk.length;
    keep?.push(chunk);
  }
  return { bytes, ttfbMs, ms: performance.now() - started };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.length;
  return out;
}

async function worker(config: Config): Promise<Sample> {
  const sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
  try {
    if (config === "load") {
      const arrow: Uint8Array[] = [];
      const csv: Uint8Array[] = [];
      await drain(streamArrow(sql, QUERY), arrow);
      await drain(streamCsv(sql, QUERY), csv);
      // deno-lint-ignore no-explicit-any
      const Buf = (globalThis as any).Buffer ?? (await import("node:buffer")).Buffer;
      const arrowBytes = Buf.from(concat(arrow).buffer);
      const csvBytes = Buf.from(concat(csv).buffer);
      arrow.length = csv.length = 0;
      // Loaded here only: its native library would weigh on every other worker's peak RSS.
      const { default: pl } = await import("nodejs-polars");
      let t = performance.now();
      const a = pl.readIPCStream(arrowBytes);
      const arrowLoadMs = performance.now() - t;
      t = performance.now();
      const c = pl.readCSV(csvBytes, { tryParseDates: true });
      const csvLoadMs = performance.now() - t;
      if (a.height !== c.height) throw new Error(`${a.height} vs ${c.height} rows`);
      return {
        config,
        runtime: runtimeName(),
        rows: a.height,
        bytes: arrowBytes.length,
        ms: 0,
        ttfbMs: 0,
        peakRssMb: peakRssMb(),
        arrowLoadMs,
        csvLoadMs,
      };
    }
    const stream: AsyncIterable<Uint8Array> = config === "copy-csv"
      ? await sql.unsafe(`copy (${QUERY}) to stdout (format csv)`).readable() as AsyncIterable<
        Uint8Array
      >
      : config === "sluice-arrow"
      ? streamArrow(sql, QUERY)
      : config === "sluice-arrow-cursor"
      ? streamArrow(sql, QUERY, { copy: false })
      : config === "sluice-csv"
      ? streamCsv(sql, QUERY)
      : streamNdjson(sql, QUERY);
    const r = await drain(stream);
    return { config, runtime: runtimeName(), rows: 2_000_000, ...r, peakRssMb: peakRssMb() };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function main(): void {
  const runs = Number(process.env.RUNS ?? 5);
  const runtimes = (process.env.RUNTIMES ?? "deno,bun").split(",");
  const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
  const samples: Sample[] = [];
  for (let run = 0; run < runs; run++) {
    for (const runtime of runtimes) {
      for (const config of Object.keys(CONFIGS) as Config[]) {
        // The main comparison (Arrow vs COPY CSV vs sluice CSV) runs every time; the rest fewer
        // times, to keep the whole run short on a shared machine.
        if (run >= EXTRA_RUNS && !MAIN.includes(config)) continue;
        const args = runtime === "deno"
          ? ["run", "-A", "bench/arrow.ts", "--worker", config]
          : ["bench/arrow.ts", "--worker", config];
        // The shared server sometimes has no free connection slot: retry a failed run.
        let out = "";
        for (let attempt = 1;; attempt++) {
          try {
            out = execFileSync(bin(runtime), args, { cwd: ROOT, encoding: "utf8", stdio: "pipe" });
            break;
          } catch (error) {
            if (attempt === 5) throw error;
            console.error(run, runtime, config, "failed, retrying:", String(error).slice(0, 120));
            execFileSync("sleep", ["5"]);
          }
        }
        const sample = JSON.parse(out.trim().split("\n").pop()!) as Sample;
        samples.push(sample);
        console.error(run, sample.runtime, config, Math.round(sample.ms), "ms");
      }
    }
  }
  writeFileSync(join(ROOT, "bench/results/arrow.json"), JSON.stringify(samples, null, 2) + "\n");
  writeFileSync(join(ROOT, "bench/results/arrow.md"), report(samples, runs));
  console.log(report(samples, runs));
}

function report(samples: Sample[], runs: number): string {
  const lines = [
    `2,000,000 rows × 6 columns (\`${TABLE}\`); ${runs} runs of COPY CSV, streamArrow and streamCsv, ${
      Math.min(runs, EXTRA_RUNS)
    } of the others, alternating, each in its own process; medians.`,
    "",
    "| runtime | configuration | wall time | rows/s | output | first byte | peak RSS | vs COPY CSV |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  const runtimes = [...new Set(samples.map((s) => s.runtime))].sort();
  for (const runtime of runtimes) {
    const of = (c: Config) => samples.filter((s) => s.runtime === runtime && s.config === c);
    const copyMs = median(of("copy-csv").map((s) => s.ms));
    for (const config of Object.keys(CONFIGS) as Config[]) {
      if (config === "load") continue;
      const ss = of(config);
      const ms = median(ss.map((s) => s.ms));
      lines.push(
        `| ${runtime} | ${CONFIGS[config]} | ${(ms / 1000).toFixed(2)} s | ${
          (2e6 / (ms / 1000) / 1e6).toFixed(2)
        } M | ${(median(ss.map((s) => s.bytes)) / 1e6).toFixed(0)} MB | ${
          median(ss.map((s) => s.ttfbMs)).toFixed(1)
        } ms | ${median(ss.map((s) => s.peakRssMb)).toFixed(0)} MB | ${
          (copyMs / ms).toFixed(2)
        }× |`,
      );
    }
  }
  lines.push("", "Loading the same 2,000,000 rows into Polars (nodejs-polars, in memory):", "");
  lines.push(
    "| runtime | Arrow (`readIPCStream`) | CSV (`readCSV`, dates parsed) |",
    "|---|---:|---:|",
  );
  for (const runtime of runtimes) {
    const ss = samples.filter((s) => s.runtime === runtime && s.config === "load");
    lines.push(
      `| ${runtime} | ${median(ss.map((s) => s.arrowLoadMs!)).toFixed(0)} ms | ${
        median(ss.map((s) => s.csvLoadMs!)).toFixed(0)
      } ms |`,
    );
  }
  return lines.join("\n") + "\n";
}

if (process.argv.includes("--worker")) {
  const config = process.argv[process.argv.indexOf("--worker") + 1] as Config;
  console.log(JSON.stringify(await worker(config)));
  process.exit(0);
} else {
  main();
}
