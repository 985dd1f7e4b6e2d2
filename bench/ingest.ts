// Bulk ingest: sluice's ingest() (CSV and NDJSON bodies, plain and upsert) vs psql \copy vs chunked
// `insert … values` of 10,000 rows (postgres.js) vs `insert … select * from unnest($1::bigint[], …)`
// of 10,000 rows, loading 2,000,000 rows into an empty table; each measurement in its own child
// process (peak RSS is per process), under Deno and Bun.
//
//   deno run -A bench/ingest.ts                       run everything, write bench/results/ingest.md
//   <deno run -A | bun run> bench/ingest.ts --worker <config>   one measurement (a JSON line)
//
// Env: RUNS (default 3), RUNTIMES (deno,bun), CONFIGS (comma list), ROWS (default 2,000,000).
import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { ingest, streamCsv, streamNdjson } from "../mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS_MD = join(ROOT, "bench", "results", "ingest.md");
const ROWS = Number(process.env.ROWS ?? 2_000_000);
const DIR = `/tmp/sluice_bench_ingest_${ROWS}`;
const CSV = join(DIR, "data.csv");
const NDJSON = join(DIR, "data.ndjson");
const SOURCE = `bench_ingest_src_${ROWS}`;
const TARGET = "bench_ingest_dst";
const CHUNK_ROWS = 10_000;

const CONFIGS = {
  "psql-copy": "psql `\\copy … from file (format csv, header)` (baseline)",
  "sluice-csv": "sluice ingest(), CSV body",
  "sluice-ndjson": "sluice ingest(), NDJSON body",
  "sluice-csv-upsert": "sluice ingest(), CSV, onConflict update all, 2 MiB batches",
  "sluice-csv-upsert-one": "sluice ingest(), CSV, onConflict update all, one statement",
  "ndjson-jsonb-staging": "NDJSON lines COPYed raw into a staging table + json_populate_record",
  "insert-values": "postgres.js `insert … values` of 10,000 rows (JSON.parse each line)",
  "unnest": "postgres.js `insert … select from unnest(arrays)` of 10,000 rows",
} as const;
type Config = keyof typeof CONFIGS;

interface Row {
  id: number;
  customer: string;
  amount: string;
  status: string;
  created_at: string;
  note: string | null;
}

function fileBody(path: string): ReadableStream<Uint8Array> {
  // deno-lint-ignore no-explicit-any
  return Readable.toWeb(createReadStream(path, { highWaterMark: 64 * 1024 })) as any;
}

async function* lines(path: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of fileBody(path)) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest) yield rest;
}

async function worker(config: Config): Promise<void> {
  const sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
  const start = performance.now();
  let rows = 0;
  if (config === "sluice-csv" || config === "sluice-ndjson") {
    const format = config === "sluice-csv" ? "csv" : "ndjson";
    ({ rows } = await ingest(sql, TARGET, fileBody(format === "csv" ? CSV : NDJSON), { format }));
  } else if (config === "sluice-csv-upsert" || config === "sluice-csv-upsert-one") {
    ({ rows } = await ingest(sql, TARGET, fileBody(CSV), {
      format: "csv",
      onConflict: { key: ["id"], update: "all" },
      targetBatchBytes: config === "sluice-csv-upsert" ? 2 * 1024 * 1024 : Infinity,
    }));
  } else if (config === "ndjson-jsonb-staging") {
    await sql.begin(async (tx) => {
      await tx`create temp table stage (line text) on commit drop`;
      // CSV with quote and delimiter bytes that never occur in JSON text: each line goes in raw.
      const w = await tx`copy stage from stdin with (format csv, quote e'\x01', delimiter e'\x02')`
        .writable();
      for await (const chunk of fileBody(NDJSON)) {
        if (!w.write(chunk)) await new Promise((r) => w.once("drain", r));
      }
      await new Promise<void>((resolve, reject) => {
        w.once("finish", resolve).once("error", reject);
        w.end();
      });
      const result = await tx.unsafe(
        `insert into ${TARGET} select r.* from stage, json_populate_record(null::${TARGET}, line::json) r`,
      );
      rows = result.count;
    });
  } else {
    let batch: Row[] = [];
    const flush = async () => {
      if (config === "insert-values") {
        await sql`insert into ${sql(TARGET)} ${sql(batch as unknown as Record<string, unknown>[])}`;
      } else {
        const col = <K extends keyof Row>(k: K) => batch.map((r) => r[k]);
        await sql`insert into ${sql(TARGET)} select * from unnest(
          ${col("id")}::bigint[], ${col("customer")}::text[], ${col("amount")}::numeric[],
          ${col("status")}::text[], ${col("created_at")}::timestamptz[], ${col("note")}::text[])`;
      }
      rows += batch.length;
      batch = [];
    };
    await sql.begin(async () => {}); // warm the connection like the others
    for await (const line of lines(NDJSON)) {
      if (line === "") continue;
      batch.push(JSON.parse(line));
      if (batch.length === CHUNK_ROWS) await flush();
    }
    if (batch.length > 0) await flush();
  }
  const ms = performance.now() - start;
  await sql.end();
  console.log(JSON.stringify({ config, runtime: runtimeName(), ms, rows, rssMb: peakRssMb() }));
}

async function prepare(sql: postgres.Sql): Promise<void> {
  const [found] = await sql`select to_regclass(${SOURCE}) is not null as exists`;
  if (!found?.exists) {
    console.error(`creating ${SOURCE} …`);
    await sql.unsafe(`create table ${SOURCE} as
      select g::bigint as id, 'customer ' || (g % 50000) as customer,
             round((random() * 10000)::numeric, 2)::numeric(12,2) as amount,
             (array['new','paid','shipped','cancelled'])[1 + g % 4] as status,
             timestamptz '2024-01-01' + g * interval '1 second' as created_at,
             case when g % 10 = 0 then null else 'note "' || md5(g::text) || E'",\\nline 2' end as note
      from generate_series(1, ${ROWS}) g`);
  }
  await sql.unsafe(`drop table if exists ${TARGET}`);
  await sql.unsafe(`create unlogged table ${TARGET} (like ${SOURCE})`);
  await sql.unsafe(`alter table ${TARGET} set logged`);
  await sql.unsafe(`alter table ${TARGET} add primary key (id)`);
  mkdirSync(DIR, { recursive: true });
  for (const [path, stream] of [[CSV, streamCsv], [NDJSON, streamNdjson]] as const) {
    if (existsSync(path)) continue;
    console.error(`writing ${path} …`);
    const out = createWriteStream(path);
    for await (const chunk of stream(sql, `select * from ${SOURCE} order by id`)) {
      if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
    }
    await new Promise((r) => out.end(r));
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: process.env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on(
      "close",
      (code) =>
        code === 0 ? resolve(out + err) : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
  });
}

async function measure(runtime: string, config: Config): Promise<Record<string, number>> {
  if (config === "psql-copy") {
    const start = performance.now();
    const out = await run("/usr/bin/time", [
      "-f",
      "RSSKB=%M",
      "psql",
      DATABASE_URL,
      "-qc",
      `\\copy ${TARGET} from '${CSV}' with (format csv, header)`,
    ]);
    const ms = performance.now() - start;
    return { ms, rows: ROWS, rssMb: Number(/RSSKB=(\d+)/.exec(out)![1]) / 1024 };
  }
  const self = fileURLToPath(import.meta.url);
  const args = runtime === "deno"
    ? ["run", "-A", self, "--worker", config]
    : ["run", self, "--worker", config];
  // Wall time of the whole child process (runtime start-up included), like psql's.
  const start = performance.now();
  const out = await run(join(ROOT, "node_modules", ".bin", runtime), args);
  const ms = performance.now() - start;
  const line = out.split("\n").find((l) => l.startsWith("{"))!;
  return { ...JSON.parse(line), ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const runs = Number(process.env.RUNS ?? 3);
  const runtimes = (process.env.RUNTIMES ?? "deno,bun").split(",");
  const configs = (process.env.CONFIGS?.split(",") ?? Object.keys(CONFIGS)) as Config[];
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await prepare(sql);
  const results: { runtime: string; config: Config; ms: number[]; rss: number[] }[] = [];
  for (const config of configs) {
    for (const runtime of config === "psql-copy" ? ["psql"] : runtimes) {
      const entry = { runtime, config, ms: [] as number[], rss: [] as number[] };
      results.push(entry);
      for (let i = 0; i < runs; i++) {
        await sql.unsafe(`truncate ${TARGET}`);
        await sql.unsafe(`checkpoint`);
        const r = await measure(runtime, config);
        const [{ n }] = await sql.unsafe(`select count(*)::int as n from ${TARGET}`) as unknown as [
          { n: number },
        ];
        if (n !== ROWS || r.rows !== ROWS) throw new Error(`${config}: ${n} rows stored`);
        entry.ms.push(r.ms!);
        entry.rss.push(r.rssMb!);
        console.error(
          `${runtime} ${config} run ${i + 1}: ${(r.ms! / 1000).toFixed(2)} s, ${
            r.rssMb!.toFixed(0)
          } MB`,
        );
      }
    }
  }
  await sql.unsafe(`drop table if exists ${TARGET}`);
  await sql.end();
  const base = median(results.find((r) => r.config === "psql-copy")?.ms ?? [NaN]);
  const versions = Object.fromEntries(
    runtimes.map((rt) => [
      rt,
      execFileSync(join(ROOT, "node_modules", ".bin", rt), ["--version"]).toString().split("\n")[0],
    ]),
  );
  const table = results.map((r) => {
    const ms = median(r.ms);
    return `| ${r.runtime} | ${CONFIGS[r.config]} | ${(ms / 1000).toFixed(2)} | ${
      Math.round(ROWS / (ms / 1000)).toLocaleString("en-US")
    } | ${(base / ms).toFixed(2)}× | ${median(r.rss).toFixed(0)} | ${
      r.ms.map((x) => (x / 1000).toFixed(1)).join(", ")
    } |`;
  });
  const md = `# Bulk ingest: ${ROWS.toLocaleString("en-US")} rows

Generated by \`deno run -A bench/ingest.ts\` on ${new Date().toISOString().slice(0, 10)}
(${Object.values(versions).join(", ")}, PostgreSQL on loopback, 2 cores shared with the server).
Target: an empty logged table with a primary key (\`id bigint, customer text, amount numeric(12,2),
status text, created_at timestamptz, note text\`; notes hold quotes, commas and newlines), truncated
and checkpointed before every run. Each run is its own process, timed from spawn to exit (runtime
start-up and connecting included, for psql too); medians of ${runs} runs.
"vs psql" is psql's median time divided by the configuration's (higher is faster; target ≥ 0.8×).
Peak RSS is the process's VmHWM (psql: \`/usr/bin/time\` max RSS).

| runtime | configuration | median s | rows/s | vs psql \\copy | peak RSS MB | runs (s) |
| --- | --- | ---: | ---: | ---: | ---: | --- |
${table.join("\n")}
`;
  mkdirSync(dirname(RESULTS_MD), { recursive: true });
  writeFileSync(RESULTS_MD, md);
  console.log(md);
}

const at = process.argv.indexOf("--worker");
if (at >= 0) await worker(process.argv[at + 1] as Config);
else await main();
