import { test } from "node:test";
import assert from "node:assert/strict";
import { SluiceError, streamRows } from "../mod.ts";
import { busySessions, connect, endPool, waitFor } from "./_db.ts";

test("streamRows() yields every row in order across batch boundaries", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const seen: number[] = [];
    const q = sql`select g as id from generate_series(1, ${25_000}::int) g order by g`;
    for await (const row of streamRows<{ id: number }>(sql, q, { firstBatchRows: 10 })) {
      seen.push(row.id);
    }
    assert.equal(seen.length, 25_000);
    assert.ok(seen.every((v, i) => v === i + 1), "rows out of order");
    assert.deepEqual(await busySessions(admin, app), []);
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("streamRows() releases the connection when the consumer breaks early", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    let n = 0;
    for await (const _ of streamRows(sql, "select g from generate_series(1, 1000000) g")) {
      if (++n === 150) break;
    }
    assert.equal(n, 150);
    assert.deepEqual(await busySessions(admin, app), []);
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("streamRows() counts a consumer still reading queued rows as active, then times out when it stalls", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const reader = streamRows(sql, "select g from generate_series(1, 100000) g", {
      idleTimeoutMs: 200,
      firstBatchRows: 50,
      targetBatchBytes: 2000,
    }).getReader();
    // Read the 50 queued rows slowly, one every 20 ms (1 s in all, 5× the idle timeout): the
    // stream must stay open because the queue keeps moving.
    for (let i = 0; i < 50; i++) {
      const { value } = await reader.read();
      assert.equal(value!.g, i + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Now stall: released within idle timeout + 1 s, and the next read reports why.
    await reader.read(); // starts the next fetch
    const released = await waitFor(async () => (await busySessions(admin, app)).length === 0, 1200);
    assert.ok(released, "the stalled stream kept its connection");
    await assert.rejects(
      (async () => {
        for (;;) if ((await reader.read()).done) break;
      })(),
      (e) => e instanceof SluiceError && e.code === "IDLE_TIMEOUT",
    );
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});
