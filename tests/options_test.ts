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
