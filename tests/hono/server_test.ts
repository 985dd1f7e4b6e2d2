// The Hono adapters on a real server (Deno.serve under `deno test`, Bun.serve under `bun test`) and
// real sockets: aborts after the first byte, disconnects, stalled readers, HEAD, streamLimit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { busySessions, connect, endPool, sessions, waitFor } from "../_db.ts";
import type { Sql } from "../_db.ts";
import { parseChunked, rawGet, RUNTIME, startServer } from "./_server.ts";

/** Sessions of the server's pool that are not idle (inside a transaction or running a query). */
async function busy(admin: Sql, app: string): Promise<string[]> {
  return await busySessions(admin, app);
}

test(`streamQuery() on ${RUNTIME}: an error after the first byte aborts the chunked response`, {
  timeout: 60_000,
}, async () => {
  const server = await startServer({ SLUICE_IDLE_MS: "20000" });
  const admin = connect().sql;
  try {
    // 3 M rows: far more than the socket buffers hold, so the server is mid-stream.
    const ex = rawGet(server.port, "/rows?n=3000000&pad=20");
    await ex.received(64 * 1024);
    ex.socket.pause();
    const killed = await waitFor(async () => {
      const rows = await admin`
        select pg_terminate_backend(pid) as ok from pg_stat_activity
        where application_name = ${server.app} and state <> 'idle'`;
      return rows.length > 0;
    }, 5000);
    assert.ok(killed, "no busy session of the server to terminate");
    ex.socket.resume();
    const end = await ex.closed;
    const res = parseChunked(ex.data());
    assert.equal(res.status, 200);
    assert.equal(res.complete, false, "the response ended with a terminating 0-chunk");
    const lines = res.body.toString().split("\n").length - 1;
    assert.ok(lines > 0 && lines < 3_000_000, `got ${lines} lines`);
    void end;
    // The same through fetch: reading the body must fail, not end.
    const r = await fetch(`${server.url}/rows?n=3000000&pad=20`);
    const reader = r.body!.getReader();
    await reader.read();
    await waitFor(async () => {
      const rows = await admin`
        select pg_terminate_backend(pid) as ok from pg_stat_activity
        where application_name = ${server.app} and state <> 'idle'`;
      return rows.length > 0;
    }, 5000);
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, "fetch saw a clean end of a failed stream");
    assert.ok(await waitFor(async () => (await busy(admin, server.app)).length === 0, 2000));
  } finally {
    await server.stop();
    await endPool(admin);
  }
});

test(`streamQuery() on ${RUNTIME}: 100 clients that disconnect mid-stream leave no busy session`, {
  timeout: 120_000,
}, async () => {
  const server = await startServer({ SLUICE_POOL_MAX: "8", SLUICE_IDLE_MS: "20000" });
  const admin = connect().sql;
  const MiB = 2 ** 20;
  try {
    // Half leave after the first batch (while the next FETCH runs), half after 256 KiB.
    const disconnect = async (i: number) => {
      const ex = rawGet(server.port, "/rows?n=300000&pad=20");
      await ex.received(i % 2 ? 2048 : 256 * 1024);
      ex.socket.destroy();
    };
    const waves = async (count: number) => {
      for (let at = 0; at < count; at += 8) {
        await Promise.all(Array.from({ length: Math.min(8, count - at) }, (_, i) => disconnect(i)));
      }
    };
    // Warm up with the same pattern (JIT, pool, heap size), then measure over 100 disconnects.
    await waves(16);
    assert.ok(await waitFor(async () => (await busy(admin, server.app)).length === 0, 1000));
    const before = await server.stats(true);
    // Release time of single disconnects: from destroy() until no session of the app is busy.
    const releaseMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const ex = rawGet(server.port, "/rows?n=300000&pad=20");
      await ex.received(i % 2 ? 2048 : 256 * 1024);
      const t0 = performance.now();
      ex.socket.destroy();
      const ok = await waitFor(async () => (await busy(admin, server.app)).length === 0, 1000);
      assert.ok(ok, `disconnect ${i}: still busy after 1 s: ${await busy(admin, server.app)}`);
      releaseMs.push(performance.now() - t0);
    }
    await waves(90);
    const t0 = performance.now();
    const clean = await waitFor(async () => (await busy(admin, server.app)).length === 0, 1000);
    assert.ok(clean, `busy 1 s after the last disconnect: ${await busy(admin, server.app)}`);
    const settleMs = performance.now() - t0;
    const open = await sessions(admin, server.app);
    assert.ok(open.length <= 8, `${open.length} connections open, pool max is 8`);
    assert.equal((await server.stats()).statements, 16 + 10 + 90);
    const after = await server.stats(true);
    releaseMs.sort((a, b) => a - b);
    console.log(
      `${RUNTIME}: 100 disconnects: release max ${releaseMs.at(-1)!.toFixed(0)} ms, median ${
        releaseMs[5]!.toFixed(0)
      } ms; settle ${settleMs.toFixed(0)} ms; after GC: RSS ${(before.rss / MiB).toFixed(1)} → ${
        (after.rss / MiB).toFixed(1)
      } MiB, heap ${(before.heapUsed / MiB).toFixed(1)} → ${
        (after.heapUsed / MiB).toFixed(1)
      } MiB; peak RSS ${(after.hwm / MiB).toFixed(1)} MiB`,
    );
    const growth = after.rss - before.rss;
    assert.ok(growth < 5 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  } finally {
    await server.stop();
    await endPool(admin);
  }
});
