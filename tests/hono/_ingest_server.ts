// A server for tests/hono/ingest_request_test.ts, run in a child process by the runtime under test
// (runtime globals are fine here: this is a test script, not lib/). Prints {"port": n} first, then
// one JSON line per finished request: {"status": 200, "body": "…"}.
import { Hono } from "hono";
import postgres from "postgres";
import { ingestRequest } from "../../lib/hono/ingest_request.ts";

declare const Deno: {
  serve(
    options: { port: number; hostname: string; onListen(addr: { port: number }): void },
    handler: (req: Request) => Response | Promise<Response>,
  ): unknown;
  env: { get(name: string): string | undefined };
};
declare const Bun: {
  serve(
    options: { port: number; hostname: string; fetch(req: Request): Response | Promise<Response> },
  ): { port: number };
  env: Record<string, string | undefined>;
};

const env = (name: string) => "Deno" in globalThis ? Deno.env.get(name) : Bun.env[name];
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

if ("Deno" in globalThis) {
  Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, app.fetch);
} else {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  console.log(JSON.stringify({ port: server.port }));
}
