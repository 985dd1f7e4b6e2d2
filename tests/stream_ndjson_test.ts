import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamNdjson } from "../mod.ts";
import { connect, endPool } from "./_db.ts";
import {
  assertClean,
  assertCoalesced,
  collect,
  createTypesTable,
  oneLine,
  rowJsonTexts,
  utf8,
} from "./formats/_oracle.ts";

const ndjson = (texts: string[]): string => texts.map((t) => oneLine(t) + "\n").join("");

test("streamNdjson() writes each row as PostgreSQL's row_to_json text, one line per row", {
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
            streamNdjson(sql, table.query, { firstBatchRows: first, targetBatchBytes: 500 }),
          )).bytes,
        );
        const theirs = await rowJsonTexts(sql, table.query);
        assert.equal(ours, ndjson(theirs));
        const lines = ours.split("\n");
        assert.equal(lines.pop(), "");
        assert.equal(lines.length, rows.length);
        lines.forEach((line, i) => assert.deepEqual(JSON.parse(line), JSON.parse(theirs[i]!)));
      }),
      { numRuns: 40 },
    );
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await table.drop();
    await endPool(admin);
  }
});

test("streamNdjson() output does not change when a column has an internal alias's name", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const q = "select 1 as sluice_row, 2 as row_to_json, 3 as x, 'sluice_row' as sluice_cursor";
    const ours = utf8((await collect(streamNdjson(sql, q))).bytes);
    assert.equal(ours, '{"sluice_row":1,"row_to_json":2,"x":3,"sluice_cursor":"sluice_row"}\n');
    assert.equal(ours, ndjson(await rowJsonTexts(sql, q)));
    const nested = "select t.sluice_row from (select 1 as sluice_row) t";
    assert.equal(utf8((await collect(streamNdjson(sql, nested))).bytes), '{"sluice_row":1}\n');
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamNdjson() runs parameterized queries and streams no rows as no bytes", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const ours = utf8(
      (await collect(streamNdjson(sql, sql`select ${"a\nb"}::text as t, ${42}::int as n`))).bytes,
    );
    assert.equal(ours, '{"t":"a\\nb","n":42}\n');
    const none = await collect(streamNdjson(sql, "select 1 as x where false"));
    assert.equal(none.bytes.length, 0);
    assert.equal(none.chunks.length, 0);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamNdjson() keeps 300,000 rows in order, coalesced into chunks of at most 64 KiB", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const stream = streamNdjson(
      sql,
      sql`select g as id, md5(g::text) as h
      from generate_series(1, ${300_000}::int) g`,
      { targetBatchBytes: 512 * 1024 },
    );
    const { bytes, chunks } = await collect(stream);
    assertCoalesced(chunks, 300_000);
    const lines = utf8(bytes).split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, 300_000);
    lines.forEach((line, i) => {
      if (line !== `{"id":${i + 1},"h":"${JSON.parse(line).h}"}`) assert.fail(`line ${i}: ${line}`);
    });
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamNdjson() frees the connection on abort mid-stream", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const controller = new AbortController();
    const reader = streamNdjson(sql, "select g from generate_series(1, 1000000) g", {
      signal: controller.signal,
    }).getReader();
    assert.ok((await reader.read()).value);
    controller.abort(new Error("client went away"));
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, /client went away/);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});
