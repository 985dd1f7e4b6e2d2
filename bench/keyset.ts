// Cursor vs keyset streaming throughput, direct and through PgBouncer (transaction mode).
// Usage: deno run -A bench/keyset.ts [runs]     (orchestrates; writes bench/results/keyset.md)
// A child run: deno run -A bench/keyset.ts run <cursor|keyset> <url>   |   bun bench/keyset.ts run …
// Each measured configuration runs in its own process; runs are interleaved; medians are quoted
// with the ratio to the direct cursor measured in the same run (the machine is shared and noisy).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import process from "node:process";
import postgres from "postgres";
import { streamBatches } from "../mod.ts";
import { startPgBouncer } from "../tests/_pgbouncer.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const TABLE = "bench_keyset_1m";
const ROWS = 1_000_000;

async function ensureTable(): Promise<void> {
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const [t] = await sql`select to_regclass(${TABLE}) as t`;
  const ok = t!.t && (await sql`select count(*)::int as n from ${sql(TABLE)}`)[0]!.n === ROWS;
  if (!ok) {
    await sql`drop table if exists ${sql(TABLE)}`;
    await sql`create table ${sql(TABLE)} as
      select g::bigint as id, (g % 1000)::int as a,
             (array['new','paid','shipped','cancelled'])[1 + g % 4] as status,
             timestamptz '2024-01-01' + g * interval '1 second' as created,
             substr(md5(g::text) || md5((g + 1)::text), 1, 30 + g % 30) as note
      from generate_series(1, ${ROWS}) g`;
    await sql`alter table ${sql(TABLE)} add primary key (id)`;
    await sql`vacuum analyze ${sql(TABLE)}`;
  }
  await sql.end();
}

async function runOne(strategy: string, url: string): Promise<void> {
  const sql = postgres(url, { max: 2, prepare: false, onnotice: () => {} });
  await sql`select 1`; // a warm pool, as a server would have
  let rows = 0;
  let pages = 0;
  const started = performance.now();
  for await (
    const batch of streamBatches(sql, `select * from ${TABLE}`, {
      ...(strategy === "keyset" ? { key: "id" } : {}),
      onBatch: () => void pages++,
    })
  ) rows += batch.length;
  const seconds = (performance.now() - started) / 1000;
  await sql.end();
  if (rows !== ROWS) throw new Error(`expected ${ROWS} rows, got ${rows}`);
  console.log(JSON.stringify({
    runtime: runtimeName(),
    strategy,
    rowsPerSec: Math.round(rows / seconds),
    seconds,
    pages,
    peakRssMb: peakRssMb(),
  }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function orchestrate(runs: number): Promise<void> {
  await ensureTable();
  const bouncer = await startPgBouncer();
  const bin = { deno: "./node_modules/.bin/deno", bun: "./node_modules/.bin/bun" };
  const args = { deno: ["run", "-A", "bench/keyset.ts"], bun: ["bench/keyset.ts"] };
  const configs = [
    ["cursor", "direct"],
    ["keyset", "direct"],
    ["cursor", "pgbouncer"],
    ["keyset", "pgbouncer"],
  ] as const;
  type Result = {
    runtime: string;
    rowsPerSec: number;
    seconds: number;
    pages: number;
    peakRssMb: number;
  };
  const results: Record<string, Record<string, Result[]>> = {};
  try {
    for (let i = 0; i < runs; i++) {
      for (const rt of ["deno", "bun"] as const) {
        for (const [strategy, path] of configs) {
          const url = path === "direct" ? DATABASE_URL : bouncer.url;
          const out = execFileSync(bin[rt], [...args[rt], "run", strategy, url], {
            encoding: "utf8",
          }).trim().split("\n").pop()!;
          const r = JSON.parse(out) as Result;
          console.log(JSON.stringify({ ...r, path }));
          ((results[rt] ??= {})[`${strategy} ${path}`] ??= []).push(r);
        }
      }
    }
  } finally {
    await bouncer.stop();
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
    "# Cursor vs keyset streaming (bench/keyset.ts)",
    "",
    `${
      ROWS.toLocaleString("en")
    } rows of ~95 bytes of text (table \`${TABLE}\`, primary key \`id\`), ` +
    `\`streamBatches()\` with defaults (2 MiB target), postgres.js \`prepare: false\`, ${runs} runs per ` +
    "cell, each in its own process, interleaved; medians. `cursor` = one server-side cursor in one " +
    'transaction; `keyset` = `key: "id"`, one `… where id > $1 order by id limit n` statement a ' +
    "page. `pgbouncer` = PgBouncer 1.18, `pool_mode = transaction`, on loopback in front of the same " +
    "server. Ratio = rows/s over `cursor direct` of the same runtime.",
    "",
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${
      (totalmem() / 2 ** 30).toFixed(0)
    } GiB ` +
    `RAM, PostgreSQL ${pg} on loopback, shared with other jobs. ${
      new Date().toISOString().slice(0, 10)
    }.`,
    "",
    "| runtime | strategy | path | rows/s (median) | × cursor direct | wall s | pages | peak RSS MB |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const rt of Object.keys(results)) {
    const base = median(results[rt]!["cursor direct"]!.map((r) => r.rowsPerSec));
    for (const [strategy, path] of configs) {
      const rs = results[rt]![`${strategy} ${path}`]!;
      const rps = median(rs.map((r) => r.rowsPerSec));
      lines.push(
        `| ${rs[0]!.runtime} | ${strategy} | ${path} | ${rps.toLocaleString("en")} | ${
          (rps / base).toFixed(2)
        } | ${median(rs.map((r) => r.seconds)).toFixed(2)} | ${median(rs.map((r) => r.pages))} | ${
          median(rs.map((r) => r.peakRssMb)).toFixed(0)
        } |`,
      );
    }
  }
  writeFileSync("bench/results/keyset.md", lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

if (process.argv[2] === "run") await runOne(process.argv[3]!, process.argv[4]!);
else await orchestrate(Number(process.argv[2] ?? 3));
