// Streams 2,000,000 rows of ~100 bytes and prints one JSON line: rows/s, peak RSS, time to first
// batch. Usage: deno run -A bench/stream_rows.ts <mode>   |   bun bench/stream_rows.ts <mode>
// Modes: sluice (streamBatches), sluice-rows (streamRows), cursor1000 (postgres.js .cursor(1000),
// the fixed-row-count baseline). Run all of them through bench/_run.mjs.
import process from "node:process";
import postgres from "postgres";
import { streamBatches, streamRows } from "../mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

const TABLE = "bench_core_2m";
const ROWS = 2_000_000;
const mode = process.argv[2] ?? "sluice";
const sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });

async function ensureTable(): Promise<void> {
  const [t] = await sql`select to_regclass(${TABLE}) as t`;
  if (t!.t) {
    const [c] = await sql`select count(*)::int as n from ${sql(TABLE)}`;
    if (c!.n === ROWS) return;
    await sql`drop table ${sql(TABLE)}`;
  }
  // id, two ints, a status, a timestamp and ~45 chars of text: ~100 bytes of text per row.
  await sql`create table ${sql(TABLE)} as
    select g::bigint as id, (g % 1000)::int as a, (g * 7 % 100000)::int as b,
           (array['new','paid','shipped','cancelled'])[1 + g % 4] as status,
           timestamptz '2024-01-01' + g * interval '1 second' as created,
           substr(md5(g::text) || md5((g + 1)::text), 1, 30 + g % 30) as note
    from generate_series(1, ${ROWS}) g`;
  await sql`alter table ${sql(TABLE)} add primary key (id)`;
  await sql`vacuum analyze ${sql(TABLE)}`;
}

if (mode === "setup") {
  await ensureTable();
  const [r] = await sql`select avg(length(t::text))::int as w, count(*)::int as n from ${
    sql(TABLE)
  } t`;
  console.log(JSON.stringify({ table: TABLE, rows: r!.n, avgRowTextBytes: r!.w }));
  await sql.end();
  process.exit(0);
}

await sql`select 1`; // a warm pool, as a server would have
const query = sql`select * from ${sql(TABLE)}`;
let rows = 0;
let bytes = 0;
let firstMs = NaN;
const started = performance.now();
if (mode === "sluice") {
  for await (
    const batch of streamBatches(sql, query, { onBatch: (i) => void (bytes += i.bytes) })
  ) {
    if (rows === 0) firstMs = performance.now() - started;
    rows += batch.length;
  }
} else if (mode === "sluice-rows") {
  for await (const _ of streamRows(sql, query)) {
    if (rows === 0) firstMs = performance.now() - started;
    rows++;
  }
} else if (mode === "cursor1000") {
  for await (const batch of query.cursor(1000)) {
    if (rows === 0) firstMs = performance.now() - started;
    rows += batch.length;
  }
} else {
  throw new TypeError(`Cannot run mode ${mode}: expected sluice, sluice-rows or cursor1000`);
}
const seconds = (performance.now() - started) / 1000;
if (rows !== ROWS) throw new Error(`expected ${ROWS} rows, got ${rows}`);
console.log(JSON.stringify({
  runtime: runtimeName(),
  mode,
  rows,
  seconds: +seconds.toFixed(3),
  rowsPerSec: Math.round(rows / seconds),
  firstBatchMs: +firstMs.toFixed(1),
  peakRssMb: +peakRssMb().toFixed(1),
  mib: +(bytes / 1048576).toFixed(1),
}));
// postgres.js under Bun can hang in sql.end() after a .cursor() loop; do not let that hang the bench.
await Promise.race([sql.end({ timeout: 1 }), new Promise((r) => setTimeout(r, 2000))]);
process.exit(0);
