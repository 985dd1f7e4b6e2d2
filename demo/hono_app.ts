// A Hono app exporting query streams. Runs with `deno serve -A demo/hono_app.ts` or
// `bun run demo/hono_app.ts` (Bun serves a default export that has `fetch`).
// DATABASE_URL defaults to the local PostgreSQL.
import { Hono } from "hono";
import postgres from "postgres";
import process from "node:process";
import { streamLimit, streamQuery } from "../lib/hono/mod.ts";

const sql = postgres(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres", {
  max: 4,
});
const app = new Hono();

// At most 4 exports at once on a pool of 4: the 5th client gets 503 + Retry-After at once.
app.use("/export/*", streamLimit({ max: 4, retryAfterSeconds: 2 }));

// GET /export/series?n=1000000 — NDJSON by default; ?format=csv|json|sse or an Accept header.
app.get("/export/series", (c) => {
  const n = Number(c.req.query("n") ?? 1000);
  return streamQuery(
    c,
    sql,
    sql`select g as id, md5(g::text) as hash, now() as at from generate_series(1, ${n}::int) g`,
    { statementTimeoutMs: 30_000, idleTimeoutMs: 30_000 },
  );
});

// A download with a fixed format and file name.
app.get(
  "/export/tables.csv",
  (c) =>
    streamQuery(c, sql, "select schemaname, tablename from pg_tables order by 1, 2", {
      format: "csv",
      filename: "tables.csv",
    }),
);

export default app;
