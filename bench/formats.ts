// Output formats vs. their peers: COPY CSV (the practical limit), naive select + JSON.stringify,
// postgres.js .cursor(1000) + JSON.stringify, pg-query-stream + JSON.stringify, and sluice's
// streamNdjson / streamCsv — on a 2,000,000-row table and a 3,000 × 200 KB table, under Deno and Bun,
// each run in its own child process (peak RSS is per process).
//
//   deno run -A bench/formats.ts                 run everything, write bench/results/formats.json,
//                                                the table in bench/RESULTS.md and bench/formats.svg
//   deno run -A bench/formats.ts --report        rewrite RESULTS.md and the SVG from the JSON
//   <deno run -A | bun> bench/formats.ts --worker <config> <dataset>    one measurement (JSON line)
//
// Env: RUNS (default 3), RUNTIMES (deno,bun), CONFIGS, DATASETS (orders,wide) — comma lists.
import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { streamCsv, streamNdjson } from "../mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS_JSON = join(ROOT, "bench", "results", "formats.json");
const RESULTS_MD = join(ROOT, "bench", "RESULTS.md");
const CHART = join(ROOT, "bench", "formats.svg");

const DATASETS = {
  orders: { table: "bench_orders_2m", rows: 2_000_000, label: "2,000,000 rows × 6 columns" },
  wide: { table: "bench_wide_3k", rows: 3_000, label: "3,000 rows × 200 KB text" },
} as const;
type Dataset = keyof typeof DATASETS;

const CONFIGS = {
  "copy-csv": "postgres.js COPY … TO STDOUT (FORMAT csv) .readable()",
  "naive-json": "await sql`select …` + JSON.stringify",
  "cursor-json": "postgres.js .cursor(1000) + JSON.stringify",
  "pg-query-stream": "pg + pg-query-stream (batchSize 1000) + JSON.stringify",
  "raw-cursor": "postgres.js .raw().cursor(2000), no encoding (driver floor)",
  "sluice-ndjson": "sluice streamNdjson()",
  "sluice-csv": "sluice streamCsv()",
} as const;
type Config = keyof typeof CONFIGS;

/** One measurement, printed by a worker. */
interface Sample {
  config: Config;
  dataset: Dataset;
  runtime: string;
  rows: number;
  bytes: number;
  ms: number;
  ttfbMs: number;
  peakRssMb: number;
}

// ---------------------------------------------------------------------------------------------
// Worker: one configuration, one dataset, one process.

async function worker(config: Config, dataset: Dataset): Promise<Sample> {
  const { table, rows } = DATASETS[dataset];
  const query = `select * from ${table}`;
  const encoder = new TextEncoder();
  let bytes = 0;
  let ttfb = -1;
  let t0 = 0;
  const sink = (chunk: Uint8Array): void => {
    if (ttfb < 0) ttfb = performance.now() - t0;
    bytes += chunk.length;
  };
  // What an app does to send objects as NDJSON: stringify, then encode a batch of lines.
  // deno-lint-ignore no-explicit-any
  const sinkObjects = (batch: readonly any[]): void => {
    let text = "";
    for (const row of batch) text += JSON.stringify(row) + "\n";
    sink(encoder.encode(text));
  };

  if (config === "pg-query-stream") {
    const { default: pg } = await import("pg");
    const { default: QueryStream } = await import("pg-query-stream");
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query("select 1");
    t0 = performance.now();
    const stream = client.query(new QueryStream(query, [], { batchSize: 1000 }));
    let batch: unknown[] = [];
    for await (const row of stream) {
      batch.push(row);
      if (batch.length === 1000) sinkObjects(batch), batch = [];
    }
    if (batch.length) sinkObjects(batch);
    const ms = performance.now() - t0;
    await client.end();
    return done(ms);
  }

  // SLUICE_TARGET_BYTES: explore other batch targets (the report uses the defaults).
  const sizing = process.env.SLUICE_TARGET_BYTES
    ? { targetBatchBytes: Number(process.env.SLUICE_TARGET_BYTES) }
    : {};
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await sql`select 1`; // connect outside the timing, the same for every configuration
  t0 = performance.now();
  switch (config) {
    case "copy-csv": {
      const readable = await sql.unsafe(`copy (${query}) to stdout (format csv)`).readable();
      for await (const chunk of readable) sink(chunk as Uint8Array);
      break;
    }
    case "naive-json": {
      const all = await sql.unsafe(query);
      for (let i = 0; i < all.length; i += 1000) sinkObjects(all.slice(i, i + 1000));
      break;
    }
    case "cursor-json": {
      for await (const batch of sql.unsafe(query).cursor(1000)) sinkObjects(batch);
      break;
    }
    case "raw-cursor": {
      // The driver's floor for any row-based path: rows arrive unparsed, nothing is encoded.
      for await (const batch of sql.unsafe(query).raw().cursor(2000)) {
        let n = 0;
        for (const row of batch) for (const v of row) n += v ? v.length : 0;
        sink(new Uint8Array(0)), bytes += n;
      }
      break;
    }
    case "sluice-ndjson": {
      for await (const chunk of streamNdjson(sql, query, sizing)) sink(chunk);
      break;
    }
    case "sluice-csv": {
      for await (const chunk of streamCsv(sql, query, { ...sizing, header: false })) sink(chunk);
      break;
    }
  }
  const ms = performance.now() - t0;
  return done(ms);

  function done(ms: number): Sample {
    return {
      config,
      dataset,
      runtime: runtimeName(),
      rows,
      bytes,
      ms,
      ttfbMs: ttfb,
      peakRssMb: peakRssMb(),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Setup: the datasets, generated once and reused.

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
      if (name === "orders") {
        // bigint id, two ints, a status, a timestamptz and 40–59 chars of text (~175 B of NDJSON).
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

// ---------------------------------------------------------------------------------------------
// Orchestrator.

const BIN = {
  deno: [join(ROOT, "node_modules", ".bin", "deno"), "run", "-A"],
  bun: [join(ROOT, "node_modules", ".bin", "bun")],
} as const;
type Runtime = keyof typeof BIN;

function runWorker(runtime: Runtime, config: Config, dataset: Dataset): Promise<Sample | string> {
  const [cmd, ...args] = BIN[runtime];
  return new Promise((resolve) => {
    let out = "";
    let err = "";
    const child = spawn(
      cmd,
      [...args, fileURLToPath(import.meta.url), "--worker", config, dataset],
      {
        cwd: ROOT,
      },
    );
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.stdout.on("data", (d) => out += d);
    child.stderr.on("data", (d) => err += d);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as Sample);
      } catch {
        resolve(`exit ${code}: ${(err || out).trim().split("\n").slice(-3).join(" | ")}`);
      }
    });
  });
}

function list<T extends string>(env: string | undefined, all: readonly T[]): T[] {
  return env ? env.split(",").filter((x): x is T => (all as readonly string[]).includes(x)) : [
    ...all,
  ];
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

async function machine(): Promise<Record<string, string>> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const [v] = await sql`select version() as v`;
  await sql.end();
  return {
    cpu,
    nproc: sh("nproc", []),
    memory: sh("free", ["-g"]).split("\n")[1]?.replace(/\s+/g, " ") ?? "?",
    postgres: String(v!.v).split(" on ")[0]!,
    deno: sh(BIN.deno[0], ["--version"]).split("\n")[0]!,
    bun: "bun " + sh(BIN.bun[0], ["--version"]),
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
  };
}

interface Results {
  machine: Record<string, string>;
  runs: number;
  samples: Sample[];
  failures: string[];
}

async function orchestrate(): Promise<void> {
  const runs = Number(process.env.RUNS ?? 3);
  const runtimes = list<Runtime>(process.env.RUNTIMES, ["deno", "bun"]);
  const configs = list<Config>(process.env.CONFIGS, Object.keys(CONFIGS) as Config[]);
  const datasets = list<Dataset>(process.env.DATASETS, Object.keys(DATASETS) as Dataset[]);
  await setup();
  const results: Results = { machine: await machine(), runs, samples: [], failures: [] };
  for (const dataset of datasets) {
    // Runs are interleaved (every configuration once, then again) so that noise from other work
    // on the machine spreads over all configurations instead of hitting one.
    for (let run = 0; run < runs; run++) {
      for (const runtime of runtimes) {
        for (const config of configs) {
          const sample = await runWorker(runtime, config, dataset);
          if (typeof sample === "string") {
            results.failures.push(`${dataset} ${runtime} ${config}: ${sample}`);
            console.error(`FAILED ${dataset} ${runtime} ${config}: ${sample}`);
          } else {
            results.samples.push(sample);
            console.error(
              `${dataset} ${runtime} ${config} run ${run + 1}: ${
                (sample.ms / 1000).toFixed(2)
              } s, ` +
                `ttfb ${sample.ttfbMs.toFixed(1)} ms, ${sample.peakRssMb.toFixed(0)} MB RSS, ` +
                `${(sample.bytes / 1e6).toFixed(1)} MB out`,
            );
          }
        }
      }
    }
  }
  // A partial run (DATASETS=… or CONFIGS=…) keeps the other samples from the last run.
  if ((process.env.DATASETS || process.env.CONFIGS) && existsSync(RESULTS_JSON)) {
    const old = JSON.parse(readFileSync(RESULTS_JSON, "utf8")) as Results;
    const rerun = (dataset: string, config: string): boolean =>
      datasets.includes(dataset as Dataset) && configs.includes(config as Config);
    results.samples.push(...old.samples.filter((s) => !rerun(s.dataset, s.config)));
    results.failures.push(
      ...old.failures.filter((f) => !rerun(f.split(" ")[0]!, f.split(" ")[2]!.replace(":", ""))),
    );
  }
  mkdirSync(dirname(RESULTS_JSON), { recursive: true });
  writeFileSync(RESULTS_JSON, JSON.stringify(results, null, 2) + "\n");
  report(results);
}

// ---------------------------------------------------------------------------------------------
// Report: medians, the Markdown table and the SVG chart.

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  dataset: Dataset;
  runtime: string;
  config: Config;
  n: number;
  ms: number;
  ttfbMs: number;
  rssMb: number;
  bytes: number;
  ratio: number; // throughput relative to COPY CSV in the same runtime (time_copy / time)
}

function summarize(results: Results): Row[] {
  const groups = new Map<string, Sample[]>();
  for (const s of results.samples) {
    const key = `${s.dataset}|${s.runtime}|${s.config}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const rows: Row[] = [];
  for (const [key, samples] of groups) {
    const [dataset, runtime, config] = key.split("|") as [Dataset, string, Config];
    rows.push({
      dataset,
      runtime,
      config,
      n: samples.length,
      ms: median(samples.map((s) => s.ms)),
      ttfbMs: median(samples.map((s) => s.ttfbMs)),
      rssMb: median(samples.map((s) => s.peakRssMb)),
      bytes: median(samples.map((s) => s.bytes)),
      ratio: NaN,
    });
  }
  for (const row of rows) {
    const copy = rows.find((r) =>
      r.dataset === row.dataset && r.runtime === row.runtime && r.config === "copy-csv"
    );
    row.ratio = copy ? copy.ms / row.ms : NaN;
  }
  const order = Object.keys(CONFIGS);
  return rows.sort((a, b) =>
    a.dataset.localeCompare(b.dataset) * -1 || a.runtime.localeCompare(b.runtime) ||
    order.indexOf(a.config) - order.indexOf(b.config)
  );
}

function markdown(results: Results, rows: Row[]): string {
  const m = results.machine;
  const lines = [
    `Machine: ${m.cpu}, ${m.nproc} cores; memory (free -g): \`${m.memory}\`; ${m.postgres} on the same machine`,
    `(loopback); ${m.deno}; ${m.bun}. Measured ${m.date}, ${results.runs} runs per configuration, each in its own`,
    "process; medians. Ratio = throughput relative to COPY CSV in the same runtime and run (higher is better).",
    "",
  ];
  for (const dataset of Object.keys(DATASETS) as Dataset[]) {
    const part = rows.filter((r) => r.dataset === dataset);
    if (!part.length) continue;
    lines.push(`#### ${DATASETS[dataset].label} (\`${DATASETS[dataset].table}\`)`, "");
    lines.push(
      "| runtime | configuration | wall time | rows/s | MB/s out | output | first byte | peak RSS | vs COPY CSV |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const r of part) {
      const s = r.ms / 1000;
      lines.push(
        `| ${r.runtime} | ${CONFIGS[r.config]} | ${s.toFixed(2)} s | ${
          fmtRate(r.n ? DATASETS[dataset].rows / s : 0)
        } | ${(r.bytes / 1e6 / s).toFixed(0)} | ${(r.bytes / 1e6).toFixed(0)} MB | ${
          r.ttfbMs.toFixed(1)
        } ms | ${r.rssMb.toFixed(0)} MB | ${r.ratio.toFixed(2)}× |`,
      );
    }
    lines.push("");
  }
  if (results.failures.length) {
    lines.push("Failed runs:", "", ...results.failures.map((f) => `- ${f}`), "");
  }
  return lines.join("\n");
}

function fmtRate(x: number): string {
  return x >= 1e6
    ? `${(x / 1e6).toFixed(2)} M`
    : x >= 1e3
    ? `${(x / 1e3).toFixed(1)} k`
    : x.toFixed(0);
}

const esc = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** A horizontal bar chart: per dataset, per configuration, one bar per runtime (ratio vs COPY). */
function chart(results: Results, rows: Row[]): string {
  const runtimes = [...new Set(rows.map((r) => r.runtime))].sort();
  const colors = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5"];
  const configs = Object.keys(CONFIGS) as Config[];
  // Room for the longest configuration name on the left and "1.57× · 0.80 s · 777 MB" on the right.
  const labelW = 420, barW = 400, barH = 13, gap = 2, groupGap = 10, width = labelW + barW + 170;
  const max = Math.max(1.1, ...rows.map((r) => r.ratio).filter(Number.isFinite));
  const x = (v: number): number => labelW + (v / max) * barW;
  const out: string[] = [];
  let y = 50;
  for (const dataset of Object.keys(DATASETS) as Dataset[]) {
    const part = rows.filter((r) => r.dataset === dataset);
    if (!part.length) continue;
    out.push(
      `<text x="10" y="${y}" font-weight="bold">${esc(DATASETS[dataset].label)}</text>`,
    );
    y += 12;
    const top = y;
    for (const config of configs) {
      const bars = runtimes.map((rt) => part.find((r) => r.runtime === rt && r.config === config));
      if (bars.every((b) => !b)) continue;
      const h = runtimes.length * (barH + gap);
      out.push(
        `<text x="${labelW - 8}" y="${y + h / 2 + 4}" text-anchor="end">${
          esc(CONFIGS[config])
        }</text>`,
      );
      bars.forEach((b, i) => {
        if (!b) return;
        const by = y + i * (barH + gap);
        out.push(
          `<rect x="${labelW}" y="${by}" width="${
            Math.max(1, x(b.ratio) - labelW).toFixed(1)
          }" height="${barH}" fill="${colors[i % colors.length]}"/>`,
          `<text x="${x(b.ratio) + 4}" y="${by + barH - 2}" font-size="10">${
            b.ratio.toFixed(2)
          }× · ${(b.ms / 1000).toFixed(2)} s · ${b.rssMb.toFixed(0)} MB</text>`,
        );
      });
      y += h + groupGap;
    }
    out.push(
      `<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${
        y - groupGap + 2
      }" stroke="#444" stroke-dasharray="3,3"/>`,
      `<text x="${x(1)}" y="${y + 6}" font-size="10" text-anchor="middle">COPY CSV = 1.0</text>`,
    );
    y += 34;
  }
  const legend = runtimes.map((rt, i) =>
    `<rect x="${width - 300 + i * 150}" y="16" width="12" height="12" fill="${
      colors[i % colors.length]
    }"/><text x="${width - 282 + i * 150}" y="26">${esc(rt)}</text>`
  ).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="26" font-weight="bold">Throughput vs COPY CSV (same runtime; median of ${results.runs})</text>
${legend}
${out.join("\n")}
</svg>
`;
}

function report(results: Results): void {
  const rows = summarize(results);
  const table = markdown(results, rows);
  const begin = "<!-- formats:begin (generated by bench/formats.ts) -->";
  const end = "<!-- formats:end -->";
  const block = `${begin}\n${table}\n${end}`;
  let md = existsSync(RESULTS_MD) ? readFileSync(RESULTS_MD, "utf8") : "# Benchmark results\n\n";
  if (md.includes(begin) && md.includes(end)) {
    md = md.slice(0, md.indexOf(begin)) + block + md.slice(md.indexOf(end) + end.length);
  } else {
    md += `\n## Output formats (bench/formats.ts)\n\n![chart](formats.svg)\n\n${block}\n`;
  }
  writeFileSync(RESULTS_MD, md);
  writeFileSync(CHART, chart(results, rows));
  console.log(table);
}

// ---------------------------------------------------------------------------------------------

const [mode, config, dataset] = process.argv.slice(2);
if (mode === "--worker") {
  const sample = await worker(config as Config, dataset as Dataset);
  console.log(JSON.stringify(sample));
  process.exit(0); // do not wait on drivers' sockets (the sample is already out)
} else if (mode === "--setup") {
  await setup();
} else if (mode === "--report") {
  report(JSON.parse(readFileSync(RESULTS_JSON, "utf8")) as Results);
} else {
  await orchestrate();
}
