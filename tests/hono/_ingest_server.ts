// A server for tests/hono/ingest_request_test.ts, run in a child process by the runtime under test
// (runtime globals are fine here: this is a test script, not lib/). Prints {"port": n} first, then
// one JSON line per finished request: {"status": 200, "body": "…"}.
import process from "node:process";
import { Hono } from "hono";
import postgres from "postgres";
import { ingestRequest } from "../../lib/hono/ingest_request.ts";
import { listen } from "./_servers/listen.ts";

const env = (name: string) => process.env[name];
const sql = postgres(env("DATABASE_URL")!, {
  max: 2,
  onnotice: () => {},
  connection: { application_name: env("SLUICE_APP")! },
});
const app = new Hono();
app.post("/ingest/:table", async (c) => {
  const response = await ingestRequest(c, sql, c.req.param("table"));
  console.log(JSON.stringify({ status: response.status, body: await response.clone().text() }));
  return response;
});

console.log(JSON.stringify({ port: await listen(app.fetch) }));
