// Serves the test app with the runtime's own server (Deno.serve, Bun.serve, @hono/node-server on
// Node), on 127.0.0.1 and a free port, and prints {"port": n} on the first line of stdout.
// Configuration comes from the environment (see createTestApp). Not a test file.
import process from "node:process";
import { createTestApp } from "./app.ts";
import { listen } from "./listen.ts";

const env = process.env;
const { app } = createTestApp({
  databaseUrl: env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  app: env.SLUICE_APP ?? "sluice_hono_server",
  poolMax: Number(env.SLUICE_POOL_MAX ?? 4),
  idleTimeoutMs: Number(env.SLUICE_IDLE_MS ?? 10_000),
  limitMax: Number(env.SLUICE_LIMIT_MAX ?? 4),
  ...(env.SLUICE_BATCH_BYTES ? { targetBatchBytes: Number(env.SLUICE_BATCH_BYTES) } : {}),
});

console.log(JSON.stringify({ port: await listen(app.fetch) }));
