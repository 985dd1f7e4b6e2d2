import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchTuner } from "../lib/batch_tuner.ts";

test("BatchTuner starts with firstBatchRows and then sizes by bytes per row", () => {
  const tuner = new BatchTuner({ targetBatchBytes: 2_000_000, firstBatchRows: 100 });
  assert.equal(tuner.nextRows, 100);
  assert.equal(tuner.record(100, 100_000), 2_000); // 1 KB/row
  assert.equal(tuner.record(2_000, 2_000 * 100), 20_000); // 100 B/row
  assert.equal(tuner.record(20_000, 20_000 * 20_000), 100); // 20 KB/row
});

test("BatchTuner sends a row wider than the target alone", () => {
  const tuner = new BatchTuner({ targetBatchBytes: 1000 });
  assert.equal(tuner.record(100, 100 * 5000), 1);
});

test("BatchTuner honours minBatchRows and maxBatchRows", () => {
  const tuner = new BatchTuner({
    targetBatchBytes: 1_000_000,
    minBatchRows: 10,
    maxBatchRows: 500,
  });
  assert.equal(tuner.record(100, 100), 500);
  assert.equal(tuner.record(100, 100_000_000), 10);
});

test("BatchTuner keeps a finite size for all-NULL batches", () => {
  const tuner = new BatchTuner({ targetBatchBytes: 4096, maxBatchRows: 1_000_000 });
  assert.equal(tuner.record(1000, 0), 4096);
});

test("BatchTuner re-converges in one batch when widths change", () => {
  const tuner = new BatchTuner({ targetBatchBytes: 1_000_000 });
  tuner.record(100, 100 * 20);
  const n = tuner.record(tuner.nextRows, tuner.nextRows * 5000);
  assert.equal(n, 200);
});

test("BatchTuner rejects bad sizing with RangeError/TypeError", () => {
  assert.throws(() => new BatchTuner({ targetBatchBytes: 0 }), RangeError);
  assert.throws(() => new BatchTuner({ firstBatchRows: 1.5 }), TypeError);
  assert.throws(() => new BatchTuner({ minBatchRows: 10, maxBatchRows: 5 }), RangeError);
});
