// Serves the test app on Deno.serve or Bun.serve (whichever runtime runs this file), on
// 127.0.0.1 and a free port, and prints {"port": n} on the first line of stdout.
// Configuration comes from the environment (see createTestApp). Not a test file.
import process from "node:process";
import { createTestApp } from "./app.ts";

const env = process.env;
const { app } = createTestApp({
  databaseUrl: env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  app: env.SLUICE_APP ?? "sluice_hono_server",
  poolMax: Number(env.SLUICE_POOL_MAX ?? 4),
  idleTimeoutMs: Number(env.SLUICE_IDLE_MS ?? 10_000),
  limitMax: Number(env.SLUICE_LIMIT_MAX ?? 4),
  ...(env.SLUICE_BATCH_BYTES ? { targetBatchBytes: Number(env.SLUICE_BATCH_BYTES) } : {}),
});

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
if (g.Deno) {
  g.Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }: { port: number }) => console.log(JSON.stringify({ port })),
  }, app.fetch);
} else {
  const server = g.Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  console.log(JSON.stringify({ port: server.port }));
}
