// Load on a real server (Deno.serve under `deno test`, Bun.serve under `bun test`): 32 concurrent
// clients each streaming 200,000 rows; exact counts and the server's peak RSS.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { busySessions, connect, endPool, waitFor } from "../_db.ts";
import { parseChunked, rawGet, RUNTIME, startServer } from "./_server.ts";

for (
  const [route, label] of [
    ["/rows", "a query with parameters (a cursor)"],
    ["/export", "a query without parameters (the adapter's default: a cursor)"],
    ["/export?copy=1", "a query without parameters through COPY (copy: true)"],
  ] as const
) {
  test(
    `streamQuery() on ${RUNTIME}: 32 concurrent clients × 200,000 rows of ${label}, exact counts`,
    {
      timeout: 150_000,
    },
    async () => {
      const clients = 32;
      const n = 200_000;
      // Peak RSS is logged, not asserted (memory targets are for bench runs, and it swings with GC
      // timing). With 32 streams at once the batch size bounds it: each stream holds about one batch as
      // rows plus its encoded bytes. SLUICE_LOAD_BATCH_BYTES sets it (default: the formats' 64 KiB).
      const batchBytes = process.env.SLUICE_LOAD_BATCH_BYTES ?? "";
      const server = await startServer({
        SLUICE_POOL_MAX: String(clients),
        SLUICE_IDLE_MS: "30000",
        ...(batchBytes ? { SLUICE_BATCH_BYTES: batchBytes } : {}),
      });
      const admin = connect().sql;
      const MiB = 2 ** 20;
      try {
        const before = await server.stats();
        const t0 = performance.now();
        const results = await Promise.all(Array.from({ length: clients }, async (_, i) => {
          const ex = rawGet(
            server.port,
            `${route}${route.includes("?") ? "&" : "?"}n=${n}&pad=${i % 4 * 10}`,
          );
          await ex.closed;
          const res = parseChunked(ex.data());
          const lines = res.body.reduce((k, b) => k + (b === 10 ? 1 : 0), 0);
          return { status: res.status, complete: res.complete, lines, bytes: res.body.length };
        }));
        const ms = performance.now() - t0;
        const after = await server.stats();
        let total = 0;
        for (const r of results) {
          assert.equal(r.status, 200);
          assert.ok(r.complete, "a response did not end with the terminating chunk");
          assert.equal(r.lines, n);
          total += r.bytes;
        }
        assert.ok(
          await waitFor(async () => (await busySessions(admin, server.app)).length === 0, 2000),
        );
        console.log(
          `${RUNTIME} ${route}: ${clients} × ${n} rows (${(total / MiB).toFixed(0)} MiB) in ${
            (ms / 1000).toFixed(1)
          } s, targetBatchBytes ${batchBytes || "default"}; server peak RSS ${
            (after.hwm / MiB).toFixed(1)
          } MiB (idle ${(before.rss / MiB).toFixed(1)} MiB)`,
        );
      } finally {
        await server.stop();
        await endPool(admin);
      }
    },
  );
}
