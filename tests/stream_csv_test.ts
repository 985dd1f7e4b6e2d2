import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamCsv } from "../mod.ts";
import { connect, endPool } from "./_db.ts";
import {
  assertClean,
  assertCoalesced,
  assertSameBytes,
  collect,
  copyCsv,
  createTypesTable,
  utf8,
} from "./formats/_oracle.ts";

// Odd but valid session settings: CSV must follow them exactly as COPY does.
const ODD_SETTINGS = {
  TimeZone: "America/St_Johns",
  DateStyle: "SQL, DMY",
  IntervalStyle: "sql_standard",
  extra_float_digits: "0",
  bytea_output: "escape",
};

for (const [label, settings, runs] of [["default", {}, 40], ["odd", ODD_SETTINGS, 15]] as const) {
  test(
    `streamCsv() is byte-identical to COPY … (FORMAT csv, HEADER) for every type (${label} session settings)`,
    {
      timeout: 120_000,
    },
    async () => {
      const admin = connect().sql;
      const { sql, app } = connect({ connection: settings });
      const table = await createTypesTable(admin);
      try {
        await fc.assert(
          fc.asyncProperty(table.rows, fc.integer({ min: 1, max: 4 }), async (rows, first) => {
            await table.fill(rows);
            const theirs = await copyCsv(sql, table.query);
            // Through COPY itself (the default for a query without parameters) and through a
            // cursor, sluice encoding the values (as for a query with parameters).
            for (const copy of [true, false]) {
              const ours = await collect(
                streamCsv(sql, table.query, { firstBatchRows: first, targetBatchBytes: 300, copy }),
              );
              assertSameBytes(ours.bytes, theirs, copy ? "through COPY" : "through a cursor");
            }
          }),
          { numRuns: runs },
        );
        await assertClean(sql, app, admin);
      } finally {
        await endPool(sql).catch(() => {});
        await table.drop();
        await endPool(admin);
      }
    },
  );
}

test("streamCsv() quotes like COPY: \\. alone, awkward column names, no rows, header off", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const queries = [
      String.raw`select '\.'::text as v`,
      String.raw`select '\.'::text as a, '\.'::text as b`,
      String.raw`select 'x'::text as "\."`,
      `select 1 as "a,b", 2 as "say ""hi""", 3 as " sp ", 4 as "é", 5 as "line
break"`,
      "select 1 as x where false",
      "select",
      "select null::text as a, ''::text as b, null::int as c",
    ];
    for (const q of queries) {
      assert.equal(utf8((await collect(streamCsv(sql, q))).bytes), utf8(await copyCsv(sql, q)), q);
      assert.equal(
        utf8((await collect(streamCsv(sql, q, { header: false }))).bytes),
        utf8(await copyCsv(sql, q, false)),
        q,
      );
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamCsv() runs parameterized queries, which COPY cannot", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const ours = await collect(
      streamCsv(
        sql,
        sql`select g, ${"a,b"}::text as t from generate_series(1, ${5000}::int) g where g % ${7} = 0`,
        { firstBatchRows: 10 },
      ),
    );
    const theirs = await copyCsv(
      sql,
      "select g, 'a,b'::text as t from generate_series(1, 5000) g where g % 7 = 0",
    );
    assertSameBytes(ours.bytes, theirs);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamCsv() coalesces 200,000 rows into chunks of at most 64 KiB, in order", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const q = "select g, md5(g::text) as h, " +
      "'2024-02-29 12:34:56.789+00'::timestamptz + g * interval '1 s' as ts " +
      "from generate_series(1, 200000) g";
    const ours = await collect(streamCsv(sql, q, { targetBatchBytes: 256 * 1024 }));
    assertCoalesced(ours.chunks, 200_000);
    assertSameBytes(ours.bytes, await copyCsv(sql, q));
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamCsv() frees the connection when the consumer cancels mid-stream", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const reader = streamCsv(sql, "select g from generate_series(1, 1000000) g", {
      firstBatchRows: 100,
    }).getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0);
    await reader.cancel();
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamCsv() rejects a header option that is not a boolean", () => {
  const { sql } = connect();
  assert.throws(
    () => streamCsv(sql, "select 1", { header: "yes" as unknown as boolean }),
    TypeError,
  );
  return endPool(sql);
});

test("streamCsv() batches about 64 KiB by default, through a cursor and through COPY", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    for (const [copy, target] of [[false, 65536], [true, 65536]] as const) {
      const sizes: number[] = [];
      await collect(
        streamCsv(sql, "select g, md5(g::text) as h from generate_series(1, 100000) g", {
          copy,
          onBatch: (b) => void sizes.push(b.bytes),
        }),
      );
      // The ramp: through a cursor 10 rows, then 320; through COPY 1, 32, then 1,024 rows.
      const full = sizes.slice(copy ? 3 : 2, -1);
      assert.ok(full.length > 5, `batches: ${sizes.join(",")}`);
      for (const bytes of full) {
        assert.ok(Math.abs(bytes - target) < target / 4, `a batch of ${bytes} B (copy: ${copy})`);
      }
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});
