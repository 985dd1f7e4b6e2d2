import { test } from "node:test";
import assert from "node:assert/strict";
import {
  copySizing,
  DEFAULT_FORMAT_TARGET_BATCH_BYTES,
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

test("copySizing() starts COPY reads with one row and no minimum, unless the caller set them", () => {
  assert.deepEqual(copySizing(undefined), { firstBatchRows: 1, minBatchRows: 1 });
  assert.deepEqual(copySizing({ targetBatchBytes: 1000 }), { firstBatchRows: 1, minBatchRows: 1 });
  assert.deepEqual(copySizing({ firstBatchRows: 50 }), { minBatchRows: 1 });
  assert.deepEqual(copySizing({ minBatchRows: 5 }), { firstBatchRows: 1 });
  assert.equal(copySizing({ firstBatchRows: 50, minBatchRows: 5 }), undefined);
});
