import { test } from "node:test";
import assert from "node:assert/strict";
import { SluiceError } from "../../mod.ts";
import { streamArrow } from "../../lib/arrow/mod.ts";
import {
  assertPoolRecovers,
  connect,
  endPool,
  isConnectionLoss,
  sessions,
  uniqueName,
  waitFor,
} from "../_db.ts";
import type { Sql } from "../_db.ts";
import { assertClean, collect } from "../formats/_oracle.ts";
import { readWithArrowJs, readWithFlechette, readWithPolars } from "./_readers.ts";
import type { Cell, Kind, ReadBack } from "./_readers.ts";
import pl from "nodejs-polars";

const INF64 = "9223372036854775807";
const NEG_INF64 = "-9223372036854775807";
const finite = (x: string, inf: string, neg: string, expr: string): string =>
  `case when ${x} is null then null when ${x} = 'infinity' then '${inf}' when ${x} = '-infinity' then '${neg}' else (${expr})::text end`;
const epochMicros = (x: string): string =>
  finite(x, INF64, NEG_INF64, `(extract(epoch from ${x}) * 1000000)::numeric(40, 0)`);

/** A column of the types table: its SQL type, values, how to read it, PostgreSQL's canonical form. */
interface Spec {
  type: string;
  values: string[];
  kind: Kind;
  canon?: (x: string) => string;
  polars?: boolean;
}

// Every type of the issue's table, with NULLs, extremes and non-ASCII text. A row past the end of
// a column's values is NULL there; the last row is NULL everywhere.
const SPECS: Record<string, Spec> = {
  i2: { type: "int2", values: ["0", "-32768", "32767"], kind: "int", polars: true },
  i4: { type: "int4", values: ["-2147483648", "2147483647", "42"], kind: "int", polars: true },
  i8: {
    type: "int8",
    values: ["-9223372036854775808", "9223372036854775807", "1234567890123456", "-7"],
    kind: "int",
    polars: true,
  },
  f4: {
    type: "float4",
    values: ["'NaN'", "'Infinity'", "'-Infinity'", "1.17549435e-38", "3.4028235e38", "'-0'", "0.1"],
    kind: "float",
  },
  f8: {
    type: "float8",
    values: [
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
      "5e-324",
      "1.7976931348623157e308",
      "'-0'",
      "0.1",
    ],
    kind: "float",
    polars: true,
  },
  num: {
    type: "numeric",
    values: ["'NaN'", "1e-20", "12345678901234567890.123456789", "'Infinity'", "-0.5"],
    kind: "string",
  },
  num_ps: { type: "numeric(10,2)", values: ["12345678.91", "-0.01"], kind: "string" },
  bo: { type: "bool", values: ["true", "false"], kind: "bool", canon: (x) => `${x}::text` },
  t: {
    type: "text",
    values: [
      "'héllo wörld ☃ 𝄞'",
      "''",
      "E'tab\\there'",
      "E'line\\nfeed\\r'",
      "E'back\\\\slash'",
      "'NULL'",
      "E'\\\\N'",
      "'日本語'",
    ],
    kind: "string",
    polars: true,
  },
  vc: { type: "varchar(5)", values: ["'ab'", "'äöü'"], kind: "string" },
  ch: {
    type: "char(3)",
    values: ["'ab'", "'x'"],
    kind: "string",
    canon: (x) => `case when ${x} is not null then format('%s', ${x}) end`,
  },
  qc: { type: '"char"', values: ["'a'"], kind: "string" },
  nm: { type: "name", values: ["'pg_class'"], kind: "string" },
  en: { type: "mood_enum", values: ["'happy'", "'sad'"], kind: "string" },
  by: {
    type: "bytea",
    values: ["'\\x00ff10'", "''", "'\\xdeadbeef'"],
    kind: "binary",
    canon: (x) => `encode(${x}, 'hex')`,
  },
  u: { type: "uuid", values: ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"], kind: "string" },
  d: {
    type: "date",
    values: [
      "'infinity'",
      "'-infinity'",
      "'4713-01-01 BC'",
      "'5874897-12-31'",
      "'2000-02-29'",
      "'0001-01-01'",
      "'1969-12-31'",
    ],
    kind: "raw32",
    canon: (x) => finite(x, "2147483647", "-2147483647", `${x} - date '1970-01-01'`),
  },
  ts: {
    type: "timestamp",
    values: [
      "'infinity'",
      "'-infinity'",
      "'4713-01-01 00:00:00 BC'",
      "'294246-12-31 23:59:59.999999'",
      "'2000-01-01 00:00:00.000001'",
      "'1969-12-31 23:59:59.5'",
    ],
    kind: "raw64",
    canon: epochMicros,
  },
  tz: {
    type: "timestamptz",
    values: [
      "'infinity'",
      "'-infinity'",
      "'1850-01-01 12:00:00 Europe/Amsterdam'",
      "'2024-03-10 12:34:56.789+05:30'",
      "'0044-03-15 12:00:00+00 BC'",
      "'294246-12-31 23:59:59.999999+00'",
    ],
    kind: "raw64",
    canon: epochMicros,
  },
  tm: {
    type: "time",
    values: ["'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:00:00.5'"],
    kind: "raw64",
    canon: (x) => `(extract(epoch from ${x}) * 1000000)::numeric(40, 0)::text`,
  },
  iv: {
    type: "interval",
    values: [
      "'1 year 2 mons -3 days 04:05:06.789'",
      "'-178000000 years'",
      "'0'",
      "'2000000 hours'",
      "'-00:00:00.000001'",
      "'-1 days +23:59:59'",
    ],
    kind: "interval",
    canon: (x) =>
      `case when ${x} is not null then format('%s %s %s', (extract(year from ${x}) * 12 + extract(month from ${x}))::int, extract(day from ${x})::int, ((extract(hour from ${x}) * 3600 + extract(minute from ${x}) * 60) * 1000000000 + extract(microseconds from ${x}) * 1000)::numeric(40, 0)) end`,
  },
  js: { type: "json", values: [`'{"a": [1, "é"], "b": null}'`, "'[]'"], kind: "string" },
  jb: { type: "jsonb", values: [`'{"a": [1, "é"], "b": null}'`], kind: "string" },
  ai: {
    type: "int4[]",
    values: ["'{1,NULL,3}'", "'{}'", "'{-2147483648}'"],
    kind: "list-int",
    canon: (x) =>
      `(select coalesce(json_agg(e::text order by o), '[]') from unnest(${x}) with ordinality as u(e, o))::text`,
  },
  at: {
    type: "text[]",
    values: [`'{"a b","NULL",NULL,"q\\"uote","back\\\\slash","é,{}",""}'`, "'{}'"],
    kind: "list-string",
    canon: (x) =>
      `(select coalesce(json_agg(e order by o), '[]') from unnest(${x}) with ordinality as u(e, o))::text`,
  },
  ad: {
    type: "date[]",
    values: ["'{2000-01-01,NULL,infinity}'"],
    kind: "list-raw32",
    canon: (x) =>
      `(select coalesce(json_agg(${
        finite("e", "2147483647", "-2147483647", "e - date '1970-01-01'")
      } order by o), '[]') from unnest(${x}) with ordinality as u(e, o))::text`,
  },
  pt: { type: "point", values: ["'(1.5,-2)'"], kind: "string" },
};

const ROWS = Math.max(...Object.values(SPECS).map((s) => s.values.length)) + 1;

async function createTypesTable(admin: Sql): Promise<{ table: string; enumType: string }> {
  const table = uniqueName("arrow_types");
  const enumType = uniqueName("mood");
  await admin.unsafe(`create type ${enumType} as enum ('happy', 'sad')`);
  const cols = Object.entries(SPECS).map(([name, s]) =>
    `${name} ${s.type.replace("mood_enum", enumType)}`
  );
  await admin.unsafe(`create table ${table} (id int primary key, ${cols.join(", ")})`);
  for (let r = 0; r < ROWS; r++) {
    const values = Object.values(SPECS).map((s) =>
      r < s.values.length ? `(${s.values[r]})::${s.type.replace("mood_enum", enumType)}` : "null"
    );
    await admin.unsafe(`insert into ${table} values (${r}, ${values.join(", ")})`);
  }
  return { table, enumType };
}

/** PostgreSQL's canonical value of every cell, column by column. */
async function expected(sql: Sql, query: string): Promise<Record<string, Cell[]>> {
  const exprs = Object.entries(SPECS).map(([name, s]) =>
    `case when q.${name} is not null then ${
      s.canon ? s.canon(`q.${name}`) : `q.${name}::text`
    } end as ${name}`
  );
  const rows = await sql.unsafe(`select ${exprs.join(", ")} from (${query}) q`);
  const out: Record<string, Cell[]> = {};
  for (const [name, s] of Object.entries(SPECS)) {
    out[name] = rows.map((r) => {
      const v = r[name] as string | null;
      if (v !== null && s.kind.startsWith("list-")) return JSON.stringify(JSON.parse(v));
      if (v === null || s.kind !== "float") return v;
      return s.type === "float4" ? Math.fround(Number(v)) : Number(v);
    });
  }
  return out;
}

function assertSameValues(back: ReadBack, want: Record<string, Cell[]>, label: string): void {
  for (const [name, s] of Object.entries(SPECS)) {
    const got = back.column(name, s.kind);
    assert.equal(got.length, want[name]!.length, `${label} ${back.reader} ${name}: row count`);
    for (let i = 0; i < got.length; i++) {
      const a = got[i];
      const b = want[name]![i];
      const same = typeof a === "number" && typeof b === "number" ? Object.is(a, b) : a === b;
      assert.ok(
        same,
        `${label} ${back.reader} ${name} row ${i}: got ${String(a)}, PostgreSQL ${String(b)}`,
      );
    }
  }
}

test(
  "streamArrow() round-trips every type of the table, read back by flechette, apache-arrow and Polars",
  {
    timeout: 60_000,
  },
  async () => {
    const admin = connect().sql;
    const { table, enumType } = await createTypesTable(admin);
    // An odd time zone: timestamptz text carries offsets (+05:30, seconds for LMT) to undo.
    const { sql, app } = connect({ connection: { TimeZone: "Asia/Kolkata" } });
    try {
      const query = `select * from ${table} order by id`;
      const want = await expected(sql, query);
      for (
        const [label, q, copy] of [
          ["COPY", query, true],
          ["cursor", query, false],
          ["parameterized", sql`select * from ${sql(table)} where id >= ${0} order by id`, true],
        ] as const
      ) {
        const { bytes, chunks } = await collect(
          streamArrow(sql, q, { copy, firstBatchRows: 2, targetBatchBytes: 200 }),
        );
        assert.ok(chunks.length > 2, `${label}: several record batches (${chunks.length} chunks)`);
        for (const back of [readWithFlechette(bytes), readWithArrowJs(bytes)]) {
          assert.equal(back.rows, ROWS, `${label} ${back.reader}: rows`);
          assert.deepEqual(back.fields.map((f) => f.name), ["id", ...Object.keys(SPECS)]);
          assertSameValues(back, want, label);
        }
        const plain = Object.keys(SPECS).filter((name) => SPECS[name]!.polars);
        const polars = readWithPolars(
          (await collect(
            streamArrow(
              sql,
              typeof q === "string"
                ? `select ${plain.join(", ")} from (${q}) q`
                : sql`select ${sql(plain)} from ${sql(table)} where id >= ${0} order by id`,
              { copy, firstBatchRows: 2, targetBatchBytes: 200 },
            ),
          )).bytes,
        );
        assert.equal(polars.rows, ROWS);
        for (const [name, s] of Object.entries(SPECS)) {
          if (!s.polars) continue;
          const series = polars.df.getColumn(name);
          // Polars hands int64 to JS as doubles: compare its own decimal text instead.
          const got = (s.kind === "int" ? series.cast(pl.Utf8) : series).toArray().map((
            v: unknown,
          ) => v === null ? null : s.kind === "float" ? v : String(v));
          for (let i = 0; i < ROWS; i++) {
            const a = got[i];
            const b = want[name]![i];
            assert.ok(
              typeof a === "number" ? Object.is(a, b) : a === b,
              `${label} polars ${name} row ${i}: ${a} vs ${b}`,
            );
          }
        }
      }
      // Types as the issue's table says, seen by apache-arrow.
      const types = Object.fromEntries(
        readWithArrowJs((await collect(streamArrow(sql, query))).bytes).fields.map((
          f,
        ) => [f.name, f.type]),
      );
      assert.deepEqual(
        [types.i8, types.f4, types.num, types.by, types.d, types.ts, types.tz, types.tm, types.iv],
        [
          "Int64",
          "Float32",
          "Utf8",
          "Binary",
          "Date32<DAY>",
          "Timestamp<MICROSECOND>",
          "Timestamp<MICROSECOND, UTC>",
          "Time64<MICROSECOND>",
          "Interval<MONTH_DAY_NANO>",
        ],
      );
      assert.equal(types.ai, "List<Int32>");
      const fields = readWithFlechette((await collect(streamArrow(sql, query))).bytes).fields;
      assert.equal(fields.find((f) => f.name === "jb")!.metadata["sluice:format"], "json");
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await admin.unsafe(`drop table ${table}; drop type ${enumType}`);
      await endPool(admin);
    }
  },
);

test("streamArrow() sends a schema and no batch for an empty result, through COPY and a cursor", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    for (const copy of [true, false]) {
      const { bytes } = await collect(
        streamArrow(sql, "select 1::int4 as a, 'x'::text as b where false", { copy }),
      );
      for (const back of [readWithFlechette(bytes), readWithArrowJs(bytes)]) {
        assert.equal(back.rows, 0);
        assert.deepEqual(back.fields.map((f) => f.name), ["a", "b"]);
      }
      assert.equal(readWithPolars(bytes).rows, 0);
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamArrow() streams 300,000 rows across many record batches, in order", {
  timeout: 60_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    for (const copy of [true, false]) {
      const { bytes } = await collect(
        streamArrow(
          sql,
          "select g::int8 as id, 'row ' || g as label, timestamptz '2020-01-01' + g * interval '1 second' as at from generate_series(1, 300000) g",
          { copy },
        ),
      );
      const back = readWithArrowJs(bytes);
      assert.equal(back.rows, 300_000);
      assert.ok(back.batches > 5, `${back.batches} batches`);
      const ids = back.column("id", "int");
      const at = back.column("at", "raw64");
      for (let i = 0; i < ids.length; i++) {
        if (ids[i] !== String(i + 1)) assert.fail(`row ${i}: id ${ids[i]}`);
        if (at[i] !== String((1577836800 + i + 1) * 1e6)) assert.fail(`row ${i}: at ${at[i]}`);
      }
      assert.equal(readWithPolars(bytes).rows, 300_000);
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamArrow() fails the stream on a value Arrow cannot hold, and releases the connection", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    for (
      const query of [
        "select interval '100000000 hours' as iv",
        "select timestamp '294276-12-31 23:59:59' as ts",
        "select '{{1,2},{3,4}}'::int[] as a",
        "select '[0:1]={1,2}'::int[] as a",
      ]
    ) {
      for (const copy of [true, false]) {
        await assert.rejects(
          collect(streamArrow(sql, query, { copy })),
          (e) => e instanceof SluiceError && e.code === "BAD_INPUT",
          `${query} (copy: ${copy})`,
        );
      }
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

for (const copy of [true, false]) {
  const via = copy ? "through COPY" : "through a cursor";

  test(`streamArrow() frees the connection when the consumer cancels mid-stream (${via})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect();
    try {
      const reader = streamArrow(sql, "select g from generate_series(1, 2000000) g", { copy })
        .getReader();
      const first = await reader.read();
      assert.ok(first.value && first.value.length > 0);
      await reader.read();
      await reader.cancel();
      await assertClean(sql, app, admin);
    } finally {
      await endPool(admin);
    }
  });

  test(`streamArrow() errors with the signal's reason on abort and frees the connection (${via})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect();
    try {
      const controller = new AbortController();
      const reader = streamArrow(sql, "select g from generate_series(1, 2000000) g", {
        copy,
        signal: controller.signal,
      }).getReader();
      await reader.read();
      const reason = new Error("user left");
      controller.abort(reason);
      await assert.rejects(
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })(),
        (e) => e === reason,
      );
      await assertClean(sql, app, admin);
    } finally {
      await endPool(admin);
    }
  });

  test(`streamArrow() errors with IDLE_TIMEOUT when the consumer stalls (${via})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect();
    try {
      const reader = streamArrow(sql, "select g from generate_series(1, 2000000) g", {
        copy,
        idleTimeoutMs: 300,
      }).getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 700));
      await assert.rejects(
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })(),
        (e) => e instanceof SluiceError && e.code === "IDLE_TIMEOUT",
      );
      await assertClean(sql, app, admin);
    } finally {
      await endPool(admin);
    }
  });

  test(`streamArrow() passes a query error through, never a clean end (${via})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect();
    try {
      // Fails after the first rows went out: the stream must error, not end.
      const chunks: Uint8Array[] = [];
      await assert.rejects(
        (async () => {
          for await (
            const chunk of streamArrow(
              sql,
              "select 1 / (50000 - g) as x from generate_series(1, 100000) g",
              { copy },
            )
          ) chunks.push(chunk);
        })(),
        (e: { code?: string }) => e.code === "22012",
      );
      assert.ok(chunks.length > 0, "rows went out before the error");
      await assertClean(sql, app, admin);
    } finally {
      await endPool(admin);
    }
  });

  test(`streamArrow() surfaces a backend killed by pg_terminate_backend (${via})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect({ max: 1 });
    try {
      const reader = streamArrow(sql, "select g from generate_series(1, 5000000) g", { copy })
        .getReader();
      await reader.read();
      const [s] = await sessions(admin, app);
      assert.ok(s, "the stream's session should exist");
      await admin`select pg_terminate_backend(${s!.pid})`;
      await assert.rejects(
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })(),
        isConnectionLoss,
      );
      await assertPoolRecovers(sql);
      await assertClean(sql, app, admin);
    } finally {
      await endPool(admin);
    }
  });
}

test("streamArrow() rejects bad options at call time", () => {
  const { sql } = connect();
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamArrow(sql, "select 1", { targetBatchBytes: -5 } as any), RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamArrow(sql, "select 1", 5 as any), TypeError);
  void sql.end();
  void waitFor;
});
