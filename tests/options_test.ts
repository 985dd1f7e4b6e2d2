import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_TARGET_BATCH_BYTES, resolveStreamOptions } from "../lib/options.ts";

test("resolveStreamOptions() applies the documented defaults", () => {
  const o = resolveStreamOptions();
  assert.equal(o.targetBatchBytes, DEFAULT_TARGET_BATCH_BYTES);
  assert.equal(o.targetBatchBytes, 2 * 1024 * 1024);
  assert.equal(o.firstBatchRows, 100);
  assert.equal(o.minBatchRows, 1);
  assert.equal(o.idleTimeoutMs, 60_000);
  assert.equal(o.statementTimeoutMs, undefined);
});

test("resolveStreamOptions() rejects bad values with std-shaped messages", () => {
  assert.throws(() => resolveStreamOptions({ idleTimeoutMs: -1 }), {
    name: "RangeError",
    message: /Cannot use idleTimeoutMs .*current value is -1/,
  });
  assert.throws(() => resolveStreamOptions({ statementTimeoutMs: 1.5 }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => resolveStreamOptions({ signal: {} as any }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => resolveStreamOptions({ onBatch: 3 as any }), TypeError);
});

test("every stream function refuses an unknown option at call time, naming the closest known one", async () => {
  const { streamBatches, streamCsv, streamNdjson, streamRows, streamSse, forEachBatch } =
    await import(
      "../mod.ts"
    );
  const { connect, endPool } = await import("./_db.ts");
  const { sql } = connect();
  try {
    const q = "select 1";
    // deno-lint-ignore no-explicit-any
    const bad = (o: Record<string, unknown>) => o as any;
    assert.throws(() => streamRows(sql, q, bad({ batchSize: 100 })), {
      name: "TypeError",
      message:
        /^Cannot use batchSize as an option of streamRows\(\): .*did you mean targetBatchBytes\?/,
    });
    assert.throws(
      () => streamBatches(sql, q, bad({ idleTimeout: 5 })),
      /did you mean idleTimeoutMs\?/,
    );
    assert.throws(
      () => streamNdjson(sql, q, bad({ header: false })),
      /header as an option of streamNdjson/,
    );
    assert.throws(() => streamSse(sql, q, bad({ signals: undefined })), /did you mean signal\?/);
    // CSV knows `header`.
    await streamCsv(sql, q, { header: false }).cancel();
    await assert.rejects(
      forEachBatch(streamBatches(sql, q), () => {}, bad({ concurency: 2 })),
      /did you mean concurrency\?/,
    );
  } finally {
    await endPool(sql);
  }
});
