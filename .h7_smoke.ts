import { PGlite } from "@electric-sql/pglite";
import { streamBatches, streamRows } from "./mod.ts";
import { streamNdjson } from "./lib/stream_ndjson.ts";
import { streamCsv } from "./lib/stream_csv.ts";
const pg = new PGlite();
const infos: any[] = [];
let n = 0;
for await (const b of streamBatches(pg, "select g as id, now() as t, '{1,2}'::int[] as a, null::text as z from generate_series(1, 50000) g", { onBatch: (i) => infos.push(i), targetBatchBytes: 100_000 })) { if (n === 0) console.log(b[0]); n += b.length; }
console.log(n, infos.length, infos.slice(0, 4));
console.log(await new Response(streamNdjson(pg, { query: "select $1::int as x, 'a\"b' as s", params: [5] })).text());
console.log(await new Response(streamCsv(pg, "select 1 as x, 'a,b' as s")).text());
for await (const r of streamRows(pg, "select g from generate_series(1,1000) g")) { if (r.g === 3) break; }
console.log(await pg.query("select 1 as ok"));
try { await pg.transaction(async (tx) => { await tx.query("set local statement_timeout = 100"); await tx.query("select pg_sleep(1)"); }); console.log("no timeout"); } catch (e) { console.log("timeout works:", (e as Error).message); }
