// A server for tests/hono/ingest_request_test.ts, run in a child process by the runtime under test
// (runtime globals are fine here: this is a test script, not lib/). Prints {"port": n} first, then
// one JSON line per finished request: {"status": 200, "body": "…"}, and one per error the server
// side sees: {"error": "…", "code": "…"}. SLUICE_INGEST_OPTIONS (JSON) adds ingestRequest options; SLUICE_POOL_MAX sets the pool size.
import process from "node:process";
import { Hono } from "hono";
import postgres from "postgres";
import { ingestRequest } from "../../lib/hono/ingest_request.ts";
import type { IngestRequestOptions } from "../../lib/hono/ingest_request.ts";
import { listen } from "./_servers/listen.ts";

const env = (name: string) => process.env[name];
const sql = postgres(env("DATABASE_URL")!, {
  max: Number(env("SLUICE_POOL_MAX") ?? 2),
  onnotice: () => {},
  connection: { application_name: env("SLUICE_APP")! },
});
const options = JSON.parse(env("SLUICE_INGEST_OPTIONS") ?? "{}") as IngestRequestOptions;
const app = new Hono();
app.post("/ingest/:table", async (c) => {
  const response = await ingestRequest(c, sql, c.req.param("table"), {
    ...options,
    onError: (error) => {
      const e = error as { message?: unknown; code?: unknown; where?: unknown };
      console.log(JSON.stringify({ error: String(e?.message), code: e?.code, where: e?.where }));
    },
  } as IngestRequestOptions);
  console.log(JSON.stringify({ status: response.status, body: await response.clone().text() }));
  return response;
});
// Whether the pool still serves a query (a locked pool hangs: the client times out). postgres.js
// 3.4.9 may reject the first query on a reconnected connection with the FATAL 57P01 its killed
// predecessor read: one such failure is allowed, as in tests/_db.ts assertPoolRecovers.
app.get("/ping", async (c) => {
  for (let attempt = 0;; attempt++) {
    try {
      const [row] = await sql`select 1 as one`;
      return c.json({ ...row, attempt });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "57P01" || attempt > 0) return c.json({ code }, 500);
    }
  }
});

console.log(JSON.stringify({ port: await listen(app.fetch) }));
