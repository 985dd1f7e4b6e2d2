import { test } from "node:test";
import assert from "node:assert/strict";
import { forEachBatch, streamBatches } from "../mod.ts";
import { busySessions, connect, endPool } from "./_db.ts";

/** A batch stream that records when each batch was pulled. */
function countingStream(batches: number, size: number, pulls: number[]): ReadableStream<number[]> {
  let i = 0;
  return new ReadableStream<number[]>({
    pull(controller) {
      if (i === batches) return controller.close();
      pulls.push(performance.now());
      controller.enqueue(Array.from({ length: size }, (_, k) => i * size + k));
      i++;
    },
  }, { highWaterMark: 0 });
}

test("forEachBatch() keeps exactly `concurrency` calls in flight as a sliding window", async () => {
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const result = await forEachBatch(countingStream(12, 3, []), async (_batch, index) => {
    active++;
    peak = Math.max(peak, active);
    // Uneven durations: a sliding window starts batch k+3 as soon as any one call finishes.
    await new Promise((r) => setTimeout(r, index % 3 === 0 ? 60 : 10));
    order.push(index);
    active--;
  }, { concurrency: 3 });
  assert.deepEqual(result, { batches: 12, rows: 36 });
  assert.equal(peak, 3);
  // With gather-then-clear, batch 3 could not finish before batch 0; with a window it does.
  assert.ok(order.indexOf(3) > -1 && order.indexOf(4) < order.indexOf(0), `order ${order}`);
});

test("forEachBatch() fetches the next batch while the current one is processed", async () => {
  const pulls: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  await forEachBatch(countingStream(3, 1, pulls), async () => {
    starts.push(performance.now());
    await new Promise((r) => setTimeout(r, 50));
    ends.push(performance.now());
  });
  // Batch 1 was pulled before batch 0's processing ended.
  assert.ok(pulls[1]! < ends[0]!, `pull ${pulls[1]} vs end ${ends[0]}`);
});

test("forEachBatch() rejects with the callback's error and frees the connection", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const boom = new Error("fn failed");
    await assert.rejects(
      forEachBatch(
        streamBatches(sql, "select g from generate_series(1, 1000000) g"),
        (_b, i) => {
          if (i === 2) throw boom;
        },
        { concurrency: 2 },
      ),
      (e) => e === boom,
    );
    assert.deepEqual(await busySessions(admin, app), []);
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("forEachBatch() stops on abort and frees the connection", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const controller = new AbortController();
    const reason = new Error("aborted by test");
    await assert.rejects(
      forEachBatch(
        streamBatches(sql, "select g from generate_series(1, 1000000) g"),
        (_b, i) => {
          if (i === 1) controller.abort(reason);
        },
        { signal: controller.signal },
      ),
      (e) => e === reason,
    );
    assert.deepEqual(await busySessions(admin, app), []);
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("forEachBatch() processes a real stream completely", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    let sum = 0;
    const result = await forEachBatch(
      streamBatches<{ g: number }>(sql, "select g from generate_series(1, 50000) g", {
        firstBatchRows: 1000,
        targetBatchBytes: 20_000,
      }),
      async (batch) => {
        await new Promise((r) => setTimeout(r, 1));
        for (const row of batch) sum += row.g;
      },
      { concurrency: 4 },
    );
    assert.equal(result.rows, 50000);
    assert.ok(result.batches > 5);
    assert.equal(sum, 50000 * 50001 / 2);
    assert.deepEqual(await busySessions(admin, app), []);
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("forEachBatch() rejects a bad concurrency with RangeError", async () => {
  await assert.rejects(
    forEachBatch(ReadableStream.from([[1]]), () => {}, { concurrency: 0 }),
    RangeError,
  );
});
