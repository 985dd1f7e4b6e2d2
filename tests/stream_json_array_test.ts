import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamJsonArray } from "../mod.ts";
import { connect, endPool } from "./_db.ts";
import {
  assertClean,
  collect,
  concat,
  createTypesTable,
  rowJsonTexts,
  utf8,
} from "./formats/_oracle.ts";

test("streamJsonArray() writes the rows' row_to_json texts as one JSON document", {
  timeout: 120_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  const table = await createTypesTable(admin);
  try {
    await fc.assert(
      fc.asyncProperty(table.rows, fc.integer({ min: 1, max: 4 }), async (rows, first) => {
        await table.fill(rows);
        const ours = utf8(
          (await collect(
            streamJsonArray(sql, table.query, { firstBatchRows: first, targetBatchBytes: 500 }),
          )).bytes,
        );
        const theirs = await rowJsonTexts(sql, table.query);
        assert.equal(ours, `[${theirs.join(",\n")}]\n`);
        assert.deepEqual(JSON.parse(ours), theirs.map((t) => JSON.parse(t)));
      }),
      { numRuns: 30 },
    );
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await table.drop();
    await endPool(admin);
  }
});

test("streamJsonArray() writes [] for no rows and handles a sluice_row column", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    assert.equal(utf8((await collect(streamJsonArray(sql, "select 1 where false"))).bytes), "[]\n");
    const q = sql`select ${1}::int as sluice_row, g from generate_series(1, 3) g`;
    assert.deepEqual(
      JSON.parse(utf8((await collect(streamJsonArray(sql, q, { firstBatchRows: 1 }))).bytes)),
      [1, 2, 3].map((g) => ({ sluice_row: 1, g })),
    );
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamJsonArray() errors instead of closing the array when the query fails mid-stream", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const reader = streamJsonArray(
      sql,
      // Through COPY the server runs ahead of the reader: the failing row waits half a second so
      // that the first rows are out before the error.
      "select case when g = 5000 then (select 1 from pg_sleep(0.5)) / (g - 5000) else g end as x from generate_series(1, 10000) g",
      { firstBatchRows: 10 },
    ).getReader();
    const got: Uint8Array[] = [];
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got.push(value);
      }
    }, (e: { code?: string }) => e.code === "22012"); // division_by_zero, passed through
    const text = utf8(concat(got));
    assert.ok(text.startsWith("[{"));
    assert.ok(!text.trimEnd().endsWith("]"), "a failed stream must not look complete");
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});
