// A Hono app over a real PostgreSQL pool for the Hono adapter tests; served by serve.ts on
// Deno.serve or Bun.serve (or in-process through app.request()). Not a test file.
import { Hono } from "hono";
import type { Context } from "hono";
import type { Sql } from "../../_db.ts";
import postgres from "postgres";
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { streamLimit, streamQuery } from "../../../lib/hono/mod.ts";
import type { StreamFormat } from "../../../lib/hono/mod.ts";

/** How the test app is set up. */
export interface TestAppOptions {
  databaseUrl: string;
  /** application_name of the pool, for pg_stat_activity. */
  app: string;
  /** Pool size. */
  poolMax: number;
  /** idleTimeoutMs of every stream. */
  idleTimeoutMs: number;
  /** streamLimit max on /limited/*. */
  limitMax: number;
  /** targetBatchBytes of the streams, if not the default. */
  targetBatchBytes?: number;
}

/** Peak and current resident set size of this process, in bytes (Linux /proc). */
export function memory(): { rss: number; hwm: number } {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) =>
    Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Builds the app and its pool. */
export function createTestApp(options: TestAppOptions): { app: Hono; sql: Sql } {
  const sql = postgres(options.databaseUrl, {
    max: options.poolMax,
    onnotice: () => {},
    connection: { application_name: options.app },
  });
  const app = new Hono();
  const base = {
    idleTimeoutMs: options.idleTimeoutMs,
    ...(options.targetBatchBytes ? { targetBatchBytes: options.targetBatchBytes } : {}),
  };
  let statements = 0;
  const rows = (n: number, pad: number) =>
    sql`select g as id, repeat('x', ${pad}::int) as pad from generate_series(1, ${n}::int) g`;
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));

  app.use("/limited/*", streamLimit({ max: options.limitMax, retryAfterSeconds: 2 }));
  const rowsRoute = (c: Context) => {
    statements++;
    const format = c.req.query("fixed") as StreamFormat | undefined;
    return streamQuery(c, sql, rows(num(c.req.query("n"), 10), num(c.req.query("pad"), 0)), {
      ...base,
      ...(format ? { format } : {}),
      ...(c.req.query("filename") ? { filename: c.req.query("filename")! } : {}),
    });
  };
  app.get("/rows", rowsRoute);
  // The same rows from a query without parameters (through COPY with ?copy=1).
  app.get("/export", (c) => {
    statements++;
    const n = Math.trunc(num(c.req.query("n"), 10));
    const pad = Math.trunc(num(c.req.query("pad"), 0));
    return streamQuery(
      c,
      sql,
      `select g as id, repeat('x', ${pad}) as pad from generate_series(1, ${n}) g`,
      { ...base, ...(c.req.query("copy") === "1" ? { copy: true } : {}) },
    );
  });
  // Rows up to `at`, then a division by zero: a query that fails after the first byte. Every
  // `pad` value holds a quote and a line break, so CSV quotes it across lines.
  app.get("/fail", (c) => {
    statements++;
    const at = Math.trunc(num(c.req.query("at"), 10));
    const pad = Math.trunc(num(c.req.query("pad"), 0));
    return streamQuery(
      c,
      sql,
      `select g as id, 'say "hi"' || chr(10) || repeat('x', ${pad}) as pad, 1 / (${at} - g) as z
       from generate_series(1, ${at}) g`,
      { ...base, ...(c.req.query("copy") === "1" ? { copy: true } : {}) },
    );
  });
  app.get("/limited/rows", rowsRoute);
  app.get("/bad-sql", (c) => streamQuery(c, sql, "select nope from sluice_no_such_table", base));
  app.get(
    "/bad-param",
    (c) => streamQuery(c, sql, sql`select ${c.req.query("x") ?? "abc"}::int as x`, base),
  );
  app.get("/sleep", (c) => streamQuery(c, sql, "select pg_sleep(5) as slept", base));
  app.get(
    "/timeout",
    (c) => streamQuery(c, sql, "select pg_sleep(5)", { ...base, statementTimeoutMs: 200 }),
  );
  app.get(
    "/secret",
    (c) =>
      streamQuery(
        c,
        sql,
        sql`select 1 / ${Number(c.req.query("d") ?? 0)}::int as "password=hunter2"`,
        base,
      ),
  );
  app.get("/stats", (c) => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    if (c.req.query("gc") !== undefined) {
      if (typeof g.gc === "function") g.gc();
      else g.Bun?.gc(true);
    }
    const m = process.memoryUsage();
    return c.json({
      statements,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      fds: readdirSync("/proc/self/fd").length,
      ...memory(),
    });
  });
  return { app, sql };
}
