// sluice's demo: `deno task demo` (or `bun run demo/main.ts`). Streams a million generated orders
// from an embedded PGlite — or from DATABASE_URL — as NDJSON, CSV, JSON and SSE, with a page that
// shows the rows arriving and a Cancel button that frees the database.
//
//   PORT          listen port (default 8000)
//   DATABASE_URL  use this PostgreSQL instead of PGlite (the table is created and seeded if missing)
//   DEMO_ROWS     rows to seed (default 1,000,000)
import process from "node:process";
import { readFile } from "node:fs/promises";
import { Hono } from "hono";
import type { Context } from "hono";
import { paginate, streamLimit, streamQuery } from "../lib/hono/mod.ts";
import type { StreamFormat } from "../lib/hono/mod.ts";
import { isPGlite } from "../lib/sources/pglite.ts";
import type { Sql } from "../mod.ts";
import { openDemoDatabase, TABLE } from "./db.ts";
import { openStatus } from "./status.ts";

const port = Number(process.env.PORT ?? 8000);
const rowsWanted = Number(process.env.DEMO_ROWS ?? 1_000_000);

const interactive = process.stdout.isTTY === true;
const log = (line: string, done: boolean): void => {
  // One progress line, rewritten in place on a terminal; one line per step otherwise.
  if (interactive) process.stdout.write(`\r\x1b[K${line}${done ? "\n" : ""}`);
  else console.log(line);
};

const database = await openDemoDatabase(process.env.DATABASE_URL, rowsWanted, log);
const status = openStatus(database);
const page = await readFile(new URL("./index.html", import.meta.url), "utf8");

const COLUMNS = "id, customer, status, total, items, created_at";
const ORDERS = `select ${COLUMNS} from ${TABLE} order by id`;

const app = new Hono();

app.get("/", (c) => c.html(page));
app.get("/status", async (c) => c.json(await status.snapshot()));

// PGlite has one connection: one stream at a time, the next gets 503 + Retry-After.
app.use("/orders.*", streamLimit({ max: database.maxStreams }));
app.use("/orders/events", streamLimit({ max: database.maxStreams }));

const serve = (format: StreamFormat) => (c: Context) =>
  streamQuery(c, database.db, ORDERS, {
    format,
    filename: `orders.${format === "sse" ? "txt" : format}`,
    ...status.start(format),
  });

app.get("/orders.ndjson", serve("ndjson"));
app.get("/orders.csv", serve("csv"));
app.get("/orders.json", serve("json"));
app.get("/orders/events", serve("sse"));

// Pages of 50 (`?limit=` up to 1000), `?after=` from the previous page's `next`.
app.get("/orders", async (c) => {
  if (!isPGlite(database.db)) {
    return paginate(c, database.db as Sql, `select ${COLUMNS} from ${TABLE}`, {
      key: "id",
      limit: 50,
      maxLimit: 1000,
    });
  }
  // paginate() reads through postgres.js only so far; on PGlite the demo runs the same keyset
  // query itself, with the same response shape (the token is the last id, unsigned).
  const limit = Math.min(Math.max(1, Number(c.req.query("limit") ?? 50) || 50), 1000);
  let after: number;
  try {
    after = Number(atob(c.req.query("after") ?? btoa("0")));
  } catch {
    after = NaN;
  }
  if (!Number.isSafeInteger(after)) {
    return c.json({ title: "Bad Request", detail: "after is not a page token" }, 400);
  }
  const rows = await database.rows(
    `select row_to_json(o.*)::text as j from (select ${COLUMNS} from ${TABLE}
     where id > $1 order by id limit $2) o`,
    [after, limit + 1],
  );
  const page = rows.slice(0, limit).map((r) => r.j as string);
  const next = rows.length > limit ? btoa(String(JSON.parse(page.at(-1)!).id)) : null;
  if (next !== null) {
    const url = new URL(c.req.url);
    url.searchParams.set("after", next);
    c.header("Link", `<${url.href}>; rel="next"`);
  }
  c.header("Cache-Control", "no-store");
  return c.body(`{"rows":[${page.join(",")}],"next":${JSON.stringify(next)}}`, 200, {
    "Content-Type": "application/json; charset=utf-8",
  });
});

const server = startServer(port, app.fetch);
console.log(
  `sluice demo: http://localhost:${port}/ — ${database.driver}, ${
    database.total.toLocaleString("en")
  } orders`,
);

// Deno.serve and Bun.serve, whichever this runtime has (the demo is an app, not the library).
function startServer(
  port: number,
  fetch: (request: Request) => Response | Promise<Response>,
): { stop(): Promise<void> } {
  const g = globalThis as {
    Deno?: { serve(o: object, h: typeof fetch): { shutdown(): Promise<void> } };
    Bun?: { serve(o: object): { stop(force?: boolean): Promise<void> } };
  };
  if (g.Deno) {
    const s = g.Deno.serve({ port, hostname: "0.0.0.0", onListen: () => {} }, fetch);
    return { stop: () => s.shutdown() };
  }
  if (g.Bun) {
    // idleTimeout 0: a slow reader of a long export is not a dead connection.
    const s = g.Bun.serve({ port, hostname: "0.0.0.0", fetch, idleTimeout: 0 });
    return { stop: () => s.stop(true) };
  }
  throw new Error("Cannot start the demo server: neither Deno.serve nor Bun.serve exists");
}

const shutdown = async (): Promise<void> => {
  await server.stop();
  await database.close();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
