// Partitioned reads (issue #16): one stream against the same stream read as 2 parts over 2
// connections in one snapshot, for CSV and NDJSON, on the 2,000,000-row table and the
// 3,000 × 200 KB table of bench/formats.ts, under Deno and Bun, each run in its own process.
//
//   flock /tmp/sluice-bench.lock deno run -A bench/partitions.ts     run, write
//                                          bench/results/partitions.{json,md}
//   <deno run -A | bun> bench/partitions.ts --worker <config> <dataset>   one measurement
//
// Env: RUNS (default 5), RUNTIMES (deno,bun), DATASETS (orders,wide) — comma lists.
import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { streamCsv, streamNdjson } from "../mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS_JSON = join(ROOT, "bench", "results", "partitions.json");
const RESULTS_MD = join(ROOT, "bench", "results", "partitions.md");

const DATASETS = {
  orders: {
    table: "bench_orders_2m",
    rows: 2_000_000,
    label: "2,000,000 rows × 6 columns (~95 B)",
  },
  wide: { table: "bench_wide_3k", rows: 3_000, label: "3,000 rows × 200 KB text (TOASTed)" },
} as const;
type Dataset = keyof typeof DATASETS;

// format × parts; "ordered" emits the parts in range order.
const CONFIGS = {
  "csv-1": { format: "csv", partitions: 1, ordered: false },
  "csv-2": { format: "csv", partitions: 2, ordered: false },
  "ndjson-1": { format: "ndjson", partitions: 1, ordered: false },
  "ndjson-2": { format: "ndjson", partitions: 2, ordered: false },
  "csv-2-ordered": { format: "csv", partitions: 2, ordered: true },
} as const;
type Config = keyof typeof CONFIGS;

interface Sample {
  config: Config;
  dataset: Dataset;
  runtime: string;
  bytes: number;
  ms: number;
  peakRssMb: number;
  run: number;
}

async function worker(config: Config, dataset: Dataset, run: number): Promise<Sample> {
  const { table } = DATASETS[dataset];
  const { format, partitions, ordered } = CONFIGS[config];
  const sql = postgres(DATABASE_URL, { max: partitions + 1, onnotice: () => {} });
  // Connect outside the timing: as many connections as the stream takes.
  await Promise.all(Array.from({ length: partitions + 1 }, () => sql`select pg_sleep(0.01)`));
  const options = { partitions, ordered };
  const t0 = performance.now();
  let bytes = 0;
  const stream = format === "csv"
    ? streamCsv(sql, { table }, { ...options, header: false })
    : streamNdjson(sql, { table }, options);
  for await (const chunk of stream) bytes += chunk.length;
  const ms = performance.now() - t0;
  await sql.end();
  return { config, dataset, runtime: runtimeName(), bytes, ms, peakRssMb: peakRssMb(), run };
}

async function setup(): Promise<void> {
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    for (const [name, { table, rows }] of Object.entries(DATASETS)) {
      const [t] = await sql`select to_regclass(${table}) as t`;
      if (t!.t) {
        const [c] = await sql`select count(*)::int as n from ${sql(table)}`;
        if (c!.n === rows) continue;
        await sql`drop table ${sql(table)}`;
      }
      console.error(`creating ${table} …`);
      // The same tables as bench/formats.ts.
      if (name === "orders") {
        await sql`create table ${sql(table)} as
          select g::bigint as id, (g % 10000)::int as customer_id,
                 (g::bigint * 7919 % 100000)::int as total_cents,
                 (array['new','paid','shipped','cancelled','refunded'])[1 + g % 5] as status,
                 timestamptz '2024-01-01' + g * interval '1 second' as created_at,
                 substr(md5(g::text) || md5((g + 1)::text), 1, 40 + g % 20) as note
          from generate_series(1, ${rows}::int) g`;
      } else {
        await sql`create table ${sql(table)} as
          select g as id, repeat(md5(g::text), 6250) as body
          from generate_series(1, ${rows}::int) g`;
      }
      await sql`alter table ${sql(table)} add primary key (id)`;
      await sql`vacuum analyze ${sql(table)}`;
    }
  } finally {
    await sql.end();
  }
}

const BIN = {
  deno: [join(ROOT, "node_modules", ".bin", "deno"), "run", "-A"],
  bun: [join(ROOT, "node_modules", ".bin", "bun")],
} as const;
type Runtime = keyof typeof BIN;

function runWorker(
  runtime: Runtime,
  config: Config,
  dataset: Dataset,
  run: number,
): Promise<Sample | string> {
  const [cmd, ...args] = BIN[runtime];
  return new Promise((resolve) => {
    let out = "";
    let err = "";
    const child = spawn(cmd, [
      ...args,
      fileURLToPath(import.meta.url),
      "--worker",
      config,
      dataset,
      String(run),
    ], { cwd: ROOT });
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.stdout.on("data", (d) => out += d);
    child.stderr.on("data", (d) => err += d);
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as Sample);
      } catch {
        resolve(`exit ${code}: ${(err || out).trim().split("\n").slice(-3).join(" | ")}`);
      }
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

function list<T extends string>(env: string | undefined, all: readonly T[]): T[] {
  return env
    ? env.split(",").filter((x): x is T => (all as readonly string[]).includes(x))
    : [...all];
}

interface Results {
  machine: string;
  runs: number;
  samples: Sample[];
  failures: string[];
}

function report(results: Results): string {
  const lines = [
    "# Partitioned reads: one stream against 2 parts (bench/partitions.ts)",
    "",
    `${results.machine}`,
    "",
    `${results.runs} runs per cell, each in its own process, runs interleaved (every configuration`,
    "once, then again). Throughput = output MB/s; **ratio = 2 parts / 1 part within the same run**,",
    "then the median of those ratios. Peak RSS ratio the same way. Other helpers' test suites shared",
    "the 2 cores during these runs (the lock only keeps benchmarks apart), so single runs are noisy.",
    "",
    "| dataset | runtime | format | 1 part MB/s | 2 parts MB/s | × (median of per-run ratios) | min–max × | RSS 1 part MB | RSS 2 parts MB | RSS × |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const by = (d: string, rt: string, c: string) =>
    results.samples.filter((s) => s.dataset === d && s.runtime.startsWith(rt) && s.config === c);
  for (const d of Object.keys(DATASETS)) {
    for (const rt of ["deno", "bun"]) {
      for (
        const [format, two] of [["csv", "csv-2"], ["ndjson", "ndjson-2"], ["csv", "csv-2-ordered"]]
      ) {
        const one = by(d, rt, `${format}-1`);
        const par = by(d, rt, two!);
        if (one.length === 0 || par.length === 0) continue;
        const mbps = (s: Sample) => s.bytes / 1e6 / (s.ms / 1000);
        const ratios: number[] = [];
        const rss: number[] = [];
        for (const p of par) {
          const o = one.find((x) => x.run === p.run);
          if (o) ratios.push(mbps(p) / mbps(o)), rss.push(p.peakRssMb / o.peakRssMb);
        }
        lines.push(
          `| ${d} | ${one[0]!.runtime} | ${two} | ${median(one.map(mbps)).toFixed(0)} | ${
            median(par.map(mbps)).toFixed(0)
          } | **${median(ratios).toFixed(2)}** | ${Math.min(...ratios).toFixed(2)}–${
            Math.max(...ratios).toFixed(2)
          } | ${median(one.map((s) => s.peakRssMb)).toFixed(0)} | ${
            median(par.map((s) => s.peakRssMb)).toFixed(0)
          } | ${median(rss).toFixed(2)} |`,
        );
      }
    }
  }
  if (results.failures.length) {
    lines.push(
      "",
      "Failures:",
      ...results.failures.map((f) => `- ${f}`),
    );
  }
  return lines.join("\n") + "\n";
}

async function orchestrate(): Promise<void> {
  const runs = Number(process.env.RUNS ?? 5);
  const runtimes = list<Runtime>(process.env.RUNTIMES, ["deno", "bun"]);
  const datasets = list<Dataset>(process.env.DATASETS, Object.keys(DATASETS) as Dataset[]);
  await setup();
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const pg = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const [v] = await pg`select version() as v`;
  await pg.end();
  const machine = `Machine: ${sh("nproc", [])} × ${cpu}, ${
    sh("free", ["-g"]).split("\n")[1]?.replace(/\s+/g, " ") ?? "?"
  } GiB; ${String(v!.v).split(" on ")[0]} on loopback; ${
    sh(BIN.deno[0], ["--version"]).split("\n")[0]
  }, bun ${sh(BIN.bun[0], ["--version"])}; ${
    new Date().toISOString().slice(0, 16).replace("T", " ")
  } UTC.`;
  const results: Results = { machine, runs, samples: [], failures: [] };
  for (let run = 0; run < runs; run++) {
    for (const dataset of datasets) {
      for (const runtime of runtimes) {
        for (const config of Object.keys(CONFIGS) as Config[]) {
          const sample = await runWorker(runtime, config, dataset, run);
          if (typeof sample === "string") {
            results.failures.push(`${dataset} ${runtime} ${config}: ${sample}`);
            console.error(`FAILED ${dataset} ${runtime} ${config}: ${sample}`);
            continue;
          }
          results.samples.push(sample);
          console.error(
            `run ${run + 1} ${dataset} ${runtime} ${config}: ${(sample.ms / 1000).toFixed(2)} s, ${
              (sample.bytes / 1e6 / (sample.ms / 1000)).toFixed(0)
            } MB/s, ${sample.peakRssMb.toFixed(0)} MB RSS`,
          );
        }
      }
    }
  }
  writeFileSync(RESULTS_JSON, JSON.stringify(results, null, 1) + "\n");
  const md = report(results);
  writeFileSync(RESULTS_MD, md);
  console.log(md);
}

if (process.argv.includes("--worker")) {
  const i = process.argv.indexOf("--worker");
  const sample = await worker(
    process.argv[i + 1] as Config,
    process.argv[i + 2] as Dataset,
    Number(process.argv[i + 3] ?? 0),
  );
  console.log(JSON.stringify(sample));
} else if (process.argv.includes("--report")) {
  const md = report(JSON.parse(readFileSync(RESULTS_JSON, "utf8")) as Results);
  writeFileSync(RESULTS_MD, md);
  console.log(md);
} else if (process.argv.includes("--setup")) {
  await setup();
} else {
  await orchestrate();
}
