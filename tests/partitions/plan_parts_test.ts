import { test } from "node:test";
import assert from "node:assert/strict";
import { pickBounds, rangeConditions, splitPages } from "../../lib/partitions/plan_parts.ts";
import { resolvePartitionOptions } from "../../lib/partitions/partition_options.ts";
import { streamCsv } from "../../mod.ts";

test("splitPages() covers every page once, the last range open-ended", () => {
  for (const [pages, parts] of [[10, 3], [1000, 4], [7, 7], [3, 8], [0, 4]]) {
    const ranges = splitPages(pages!, parts!, 150000);
    assert.equal(ranges.length, Math.max(1, Math.min(parts!, pages!)));
    assert.equal(ranges[0]![0], 0);
    assert.equal(ranges.at(-1)![1], undefined);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]![0], ranges[i - 1]![1]);
  }
});

test("splitPages() reads a table as one part before PostgreSQL 14 (no TID range scans)", () => {
  assert.deepEqual(splitPages(1000, 4, 130011), [[0, undefined]]);
});

test("pickBounds() takes equal-share quantiles of a histogram, without repeats", () => {
  assert.deepEqual(pickBounds(["0", "10", "20", "30", "40"], 4), ["10", "20", "30"]);
  assert.deepEqual(pickBounds(["1", "1", "2", "2", "5"], 4), ["2"]);
  assert.deepEqual(pickBounds(["1"], 4), []);
});

test("rangeConditions() puts NULL keys in the first part and leaves no gap", () => {
  assert.deepEqual(rangeConditions(`k`, ["5", "9"], "int4"), [
    `(k < '5'::int4 or k is null)`,
    `k >= '5'::int4 and k < '9'::int4`,
    `k >= '9'::int4`,
  ]);
  assert.deepEqual(rangeConditions(`k`, [], "int4"), ["true"]);
  assert.deepEqual(rangeConditions(`k`, ["it's"], "text"), [
    `(k < 'it''s'::text or k is null)`,
    `k >= 'it''s'::text`,
  ]);
});

test("partition options are checked at call time", () => {
  assert.equal(resolvePartitionOptions({}).partitions, 1);
  assert.throws(() => resolvePartitionOptions({ partitions: 0 }), RangeError);
  assert.throws(() => resolvePartitionOptions({ partitions: 1.5 }), TypeError);
  assert.throws(() => resolvePartitionOptions({ partitionKey: "" }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => resolvePartitionOptions({ ordered: "yes" as any }), TypeError);
  assert.throws(() => resolvePartitionOptions({ partitionBufferBytes: 0 }), RangeError);
  assert.throws(
    () => resolvePartitionOptions({ partitions: 2, strategy: "keyset", key: "id" }),
    /Cannot use partitions with a keyset stream/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamCsv({} as any, "select 1", { partitions: -1 }), RangeError);
});
