// Imports sluice as a user would from an installed tarball and streams real rows: run from the
// scratch project by tests/_node_pack.sh under each runtime. Prints one line "<runtime>: ok …".
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import { Hono } from "hono";
import { streamBatches, streamCsv, streamNdjson } from "sluice";
import { streamLimit, streamQuery } from "sluice/hono";

const runtime = globalThis.Deno
  ? `deno ${globalThis.Deno.version.deno}`
  : globalThis.Bun
  ? `bun ${globalThis.Bun.version}`
  : `node ${process.version}`;
const sql = postgres(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres", {
  max: 2,
  onnotice: () => {},
  connection: { application_name: `sluice_pack_${process.pid}` },
});
try {
  const query = sql`select g as id, 'row ' || g as name from generate_series(1, 10000) g`;
  const ndjson = await new Response(streamNdjson(sql, query)).text();
  const lines = ndjson.trimEnd().split("\n");
  assert.equal(lines.length, 10000);
  assert.deepEqual(JSON.parse(lines[9999]), { id: 10000, name: "row 10000" });

  let rows = 0;
  for await (const batch of streamBatches(sql, query)) rows += batch.length;
  assert.equal(rows, 10000);

  const csv = await new Response(streamCsv(sql, query)).text();
  assert.equal(csv.trimEnd().split("\n").length, 10001);

  const app = new Hono();
  app.get("/rows", streamLimit({ max: 2 }), (c) => streamQuery(c, sql, query));
  const res = await app.request("/rows", { headers: { accept: "text/csv" } });
  assert.equal(res.status, 200);
  assert.equal((await res.text()).trimEnd().split("\n").length, 10001);
  console.log(`${runtime}: ok (${typeof streamNdjson}, 10000 rows as NDJSON, batches, CSV, Hono)`);
} finally {
  await sql.end();
}
