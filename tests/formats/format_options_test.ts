import { test } from "node:test";
import assert from "node:assert/strict";
import {
  copySizing,
  DEFAULT_FORMAT_TARGET_BATCH_BYTES,
  endsAtFullChunk,
  withFormatDefaults,
} from "../../lib/formats/format_options.ts";

test("withFormatDefaults() sets targetBatchBytes to 64 KiB, firstBatchRows and minBatchRows to 10 unless given", () => {
  assert.equal(DEFAULT_FORMAT_TARGET_BATCH_BYTES, 64 * 1024);
  assert.equal(withFormatDefaults(undefined).targetBatchBytes, 64 * 1024);
  assert.equal(withFormatDefaults({ idleTimeoutMs: 5 }).targetBatchBytes, 64 * 1024);
  assert.equal(withFormatDefaults({ idleTimeoutMs: 5 }).idleTimeoutMs, 5);
  assert.equal(withFormatDefaults({ targetBatchBytes: 1000 }).targetBatchBytes, 1000);
  assert.equal(withFormatDefaults({}).firstBatchRows, 10);
  assert.equal(withFormatDefaults({ firstBatchRows: 500 }).firstBatchRows, 500);
  assert.equal(withFormatDefaults({ maxBatchRows: 3 }).firstBatchRows, 3);
  assert.equal(withFormatDefaults({}).minBatchRows, 10);
  assert.equal(withFormatDefaults({ maxBatchRows: 3 }).minBatchRows, 3);
  assert.equal(withFormatDefaults({ minBatchRows: 1 }).minBatchRows, 1);
  assert.throws(() => withFormatDefaults(42 as unknown as object), TypeError);
});

test("copySizing() starts COPY reads with one row, no minimum and batches of one chunk, unless the caller set them", () => {
  const all = { firstBatchRows: 1, minBatchRows: 1, targetBatchBytes: 128 * 1024 };
  assert.deepEqual(copySizing(undefined), all);
  assert.deepEqual(copySizing({ idleTimeoutMs: 5 }), all);
  assert.deepEqual(copySizing({ targetBatchBytes: 1000 }), { firstBatchRows: 1, minBatchRows: 1 });
  assert.deepEqual(copySizing({ firstBatchRows: 50 }), {
    minBatchRows: 1,
    targetBatchBytes: 131072,
  });
  assert.deepEqual(copySizing({ minBatchRows: 5 }), {
    firstBatchRows: 1,
    targetBatchBytes: 131072,
  });
  assert.equal(copySizing({ firstBatchRows: 50, minBatchRows: 5, targetBatchBytes: 9 }), undefined);
  assert.equal(endsAtFullChunk(undefined), true);
  assert.equal(endsAtFullChunk({ targetBatchBytes: 65536 }), false);
});
