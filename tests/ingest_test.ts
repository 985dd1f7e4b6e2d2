import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ingest } from "../lib/ingest.ts";
import { SluiceError } from "../lib/errors.ts";
import { streamCsv } from "../lib/stream_csv.ts";
import { streamNdjson } from "../lib/stream_ndjson.ts";
import { connect, endPool, uniqueName, waitFor } from "./_db.ts";
import type { Sql } from "./_db.ts";
import { assertClean, createTypesTable } from "./formats/_oracle.ts";

const encoder = new TextEncoder();

/** A body stream over the given text, cut into chunks of `size` bytes (to split lines and UTF-8). */
function bodyOf(text: string | Uint8Array, size = 7): ReadableStream<Uint8Array> {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/**
 * A checksum of a table's rows. With `jsonOneLine`, json values are compared as NDJSON can carry
 * them: CR/LF whitespace as spaces, and a JSON `null` as SQL NULL (`row_to_json` renders both as
 * `null`).
 */
async function checksum(sql: Sql, table: string, jsonOneLine = false): Promise<string> {
  const cols = await sql<{ attname: string; json: boolean }[]>`
    select attname, atttypid in ('json'::regtype, 'jsonb'::regtype) as json from pg_attribute
    where attrelid = ${table}::regclass and attnum > 0 and not attisdropped order by attnum`;
  const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const list = cols.map(({ attname, json }) => ({ attname: ident(attname), json })).map((c) =>
    c.json && jsonOneLine
      ? `case when ${c.attname}::jsonb = 'null' then null else translate(${c.attname}::text, E'\\r\\n', '  ') end`
      : `${c.attname}::text`
  );
  const [row] = await sql.unsafe(
    `select count(*)::int as n, md5(string_agg(row(${list.join(", ")})::text, ',' order by ${
      ident(cols[0]!.attname)
    })) as h from ${table}`,
  );
  return `${row!.n}:${row!.h}`;
}

/** Fills the oracle table through text parameters (so postgres.js serializes none of them). */
async function fill(
  admin: Sql,
  table: { name: string; columns: { type: string }[] },
  rows: (string | null)[][],
): Promise<void> {
  await admin.unsafe(`truncate ${table.name}`);
  if (rows.length === 0) return;
  const params: (string | null)[] = [];
  const tuples = rows.map((values, i) => {
    const cells = values.map((v, j) => {
      params.push(v);
      return `$${params.length}::text::${table.columns[j]!.type}`;
    });
    return `(${i}, ${cells.join(", ")})`;
  });
  await admin.unsafe(`insert into ${table.name} values ${tuples.join(", ")}`, params);
}

async function count(sql: Sql, table: string): Promise<number> {
  const [row] = await sql.unsafe(`select count(*)::int as n from ${table}`);
  return row!.n;
}

test("ingest() round-trips streamCsv and streamNdjson output across every oracle type", {
  timeout: 120_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createTypesTable(admin, 8);
  const copy = `${table.name}_in`;
  try {
    await admin.unsafe(`create table ${copy} (like ${table.name})`);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(table.rows, fc.integer({ min: 1, max: 200 }), async (rows, size) => {
        await fill(admin, table, rows);
        for (const format of ["csv", "ndjson"] as const) {
          await admin.unsafe(`truncate ${copy}`);
          const exported = format === "csv"
            ? streamCsv(sql, table.query)
            : streamNdjson(sql, table.query);
          // Re-chunk to split lines, quoted fields and UTF-8 sequences at odd places.
          const bytes = new Uint8Array(await new Response(exported).arrayBuffer());
          const result = await ingest(sql, copy, bodyOf(bytes, size), { format });
          assert.equal(result.rows, rows.length);
          assert.equal(
            await checksum(admin, copy, format === "ndjson"),
            await checksum(admin, table.name, format === "ndjson"),
            `${format} round trip differs`,
          );
        }
        runs++;
      }),
      { numRuns: 25 },
    );
    assert.equal(runs, 25);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${copy}`);
    await table.drop();
    await endPool(admin);
  }
});

test("ingest() round-trips nested arrays, composites, json arrays and odd identifiers", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const schema = uniqueName('Ing Schema"');
  const q = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const comp = `${q(schema)}.${q("pair")}`;
  const qt = `${q(schema)}.${q('Odd "Table"')}`;
  try {
    await admin.unsafe(`create schema ${q(schema)}`);
    await admin.unsafe(`create type ${comp} as (a int, b text, c numeric[], d jsonb)`);
    await admin.unsafe(`create domain ${q(schema)}.pos as int check (value > 0)`);
    await admin.unsafe(`create table ${qt} (
      "Id" int primary key, "a b" text, "q""t" numeric[][], jb jsonb[], js json[], p ${comp},
      ps ${comp}[], r real, bits bit varying, pt point, ch char(3), d ${q(schema)}.pos,
      big bigint[], n numeric, ts timestamptz[], tr int4range[], ctl text)`);
    await admin.unsafe(`insert into ${qt} values
      (1, E'tab\\there\\nnew "q" \\\\ é😀', '{{1.50,NaN},{-Infinity,3}}',
       array['{"a": [1, "x\\"y"]}', '"str"', '[]']::jsonb[], array['{"k" : 1}', '2']::json[],
       row(1, 'x,(y)"z', '{1.5,NULL}', '{"n": null}'),
       array[row(2, NULL, '{}', '[1]')::${comp}, NULL, row(NULL, '', NULL, NULL)::${comp}],
       1.1754944e-38, B'10110', '(1.5,-2)', 'ab', 5, '{-9223372036854775808,9223372036854775807}',
       '1.000', array['infinity', '2020-01-01 10:00+02']::timestamptz[], array['[1,3)', 'empty']::int4range[],
       E'\\x01\\x1f\\x7f'),
      (2, '', '{}', '{}', '{}', row(NULL, NULL, NULL, NULL), '{}', 'NaN', B'', '(0,0)', '', 1, '{}',
       '-0.0000000000000000000001', '{}', '{}', ''),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const copy = `${schema}.copy`;
    await admin.unsafe(`create table ${q(schema)}.copy (like ${qt})`);
    for (const format of ["csv", "ndjson"] as const) {
      await admin.unsafe(`truncate ${q(schema)}.copy`);
      const exported = format === "csv"
        ? streamCsv(sql, `select * from ${qt} order by 1`)
        : streamNdjson(sql, `select * from ${qt} order by 1`);
      const result = await ingest(sql, copy, exported, { format });
      assert.deepEqual(result, { rows: 3, batches: 1 });
      assert.equal(
        await checksum(admin, `${q(schema)}.copy`, format === "ndjson"),
        await checksum(admin, qt, format === "ndjson"),
        `${format} round trip differs`,
      );
    }
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop schema if exists ${q(schema)} cascade`);
    await endPool(admin);
  }
});

/** Creates `(id int primary key, v text, amount numeric, n int default 7)`; returns its name. */
async function createPlain(admin: Sql): Promise<string> {
  const name = uniqueName("ing");
  await admin.unsafe(
    `create table ${name} (id int primary key, v text, amount numeric, n int default 7)`,
  );
  return name;
}

/** Runs `fn`, expecting it to reject; returns the error. */
async function rejection(fn: () => Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  assert.fail("expected a rejection");
}

test("ingest() rejects bad input naming the line and the column, committing nothing", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  const ok = (id: number) => `{"id": ${id}, "v": "x", "amount": 1.5}\n`;
  const csvOk = (id: number) => `${id},x,1.5\n`;
  const cases: [string, "ndjson" | "csv", string, RegExp][] = [
    ["malformed JSON", "ndjson", ok(1) + ok(2) + `{"id": 3, "v": }\n` + ok(4), /line 3\b.*"v"/],
    [
      "unknown key",
      "ndjson",
      ok(1) + ok(2) + ok(3) + `{"id": 4, "nope": 1}\n`,
      /line 4\b.*"nope".*unknown column/,
    ],
    ["repeated key", "ndjson", ok(1) + `{"id": 2, "v": "a", "v": "b"}\n`, /line 2\b.*"v".*twice/],
    ["not an object", "ndjson", ok(1) + `[1, 2]\n`, /line 2\b/],
    ["blank line", "ndjson", ok(1) + `\n` + ok(3), /line 2\b.*empty line/],
    ["trailing data", "ndjson", ok(1) + `{"id": 2} x\n`, /line 2\b/],
    ["bad escape", "ndjson", ok(1) + `{"id": 2, "v": "a\\qb"}\n`, /line 2\b.*"v".*escape/],
    [
      "unknown first-line key",
      "ndjson",
      `{"id": 1, "Robert'); drop table x; --": 1}\n`,
      /line 1\b.*unknown column/,
    ],
    ["stray quote", "csv", "id,v,amount\n" + csvOk(1) + `2,a"b,1\n`, /line 3\b.*"v".*quote/],
    [
      "text after a closing quote",
      "csv",
      "id,v,amount\n" + csvOk(1) + csvOk(2) + `3,"a"b,1\n`,
      /line 4\b.*"v"/,
    ],
    [
      "unterminated quote",
      "csv",
      "id,v,amount\n" + csvOk(1) + `2,"abc\n` + csvOk(3),
      /line 3\b.*"v".*not closed/,
    ],
    ["too many fields", "csv", "id,v,amount\n" + csvOk(1) + `2,a,1,9\n`, /line 3\b.*more fields/],
    ["too few fields", "csv", "id,v,amount\n" + csvOk(1) + `2,a\n`, /line 3\b.*2 fields/],
    ["unknown header column", "csv", "id,nope\n1,2\n", /line 1\b.*"nope".*unknown column/],
    ["end-of-data marker", "csv", "id\n1\n\\.\n2\n", /line 3\b/],
  ];
  try {
    for (const [name, format, text, pattern] of cases) {
      const error = await rejection(() => ingest(sql, table, bodyOf(text), { format }));
      assert.ok(error instanceof SluiceError, `${name}: ${error}`);
      assert.equal(error.code, "BAD_INPUT", name);
      assert.match(error.message, pattern, name);
      assert.equal(await count(admin, table), 0, `${name}: rows were committed`);
    }
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingest() passes PostgreSQL's error through, naming line and column, even on the last line", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  try {
    const lines = Array.from({ length: 4 }, (_, i) => `{"id": ${i + 1}, "amount": ${i}}`);
    for (const bad of [2, 5]) {
      const body = [...lines];
      body.splice(bad - 1, 0, `{"id": 99, "amount": "abc"}`);
      const error = await rejection(() =>
        ingest(sql, table, bodyOf(body.join("\n") + "\n"), { format: "ndjson" })
      );
      assert.equal(error.code, "22P02", String(error));
      assert.match(String(error.where), new RegExp(`line ${bad}, column amount`));
      const csv = [
        "id,amount",
        ...body.map((l) => JSON.parse(l)).map((o) => `${o.id},${o.amount}`),
      ];
      const csvError = await rejection(() =>
        ingest(sql, table, bodyOf(csv.join("\n") + "\n", 5), { format: "csv" })
      );
      assert.equal(csvError.code, "22P02", String(csvError));
      assert.match(String(csvError.where), new RegExp(`line ${bad + 1}, column amount`));
    }
    // A duplicate key: PostgreSQL's unique violation, nothing committed.
    const dup = await rejection(() =>
      ingest(sql, table, bodyOf(`{"id": 1}\n{"id": 1}\n`), { format: "ndjson" })
    );
    assert.equal(dup.code, "23505");
    // Names are identifiers, never SQL.
    const injected = await rejection(() =>
      ingest(sql, `${table}; drop table ${table}`, bodyOf(`{"id": 1}\n`), { format: "ndjson" })
    );
    assert.equal(injected.code, "42P01");
    assert.equal(await count(admin, table), 0);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingest() checks its arguments", async () => {
  const { sql } = connect();
  try {
    const body = () => bodyOf("");
    const bad: [unknown, unknown, unknown, RegExp][] = [
      ["t", body(), { format: "xml" }, /Cannot use format/],
      ["", body(), { format: "csv" }, /Cannot use table as an identifier/],
      ["a.b.c", body(), { format: "csv" }, /schema\.table/],
      ["t", null, { format: "csv" }, /Cannot use body/],
      ["t", body(), { format: "csv", columns: [] }, /Cannot use columns/],
      ["t", body(), { format: "csv", columns: ["a", "a"] }, /distinct/],
      ["t", body(), { format: "csv", onConflict: { key: [], update: "all" } }, /onConflict\.key/],
      [
        "t",
        body(),
        { format: "csv", onConflict: { key: ["id"], update: [] } },
        /onConflict\.update/,
      ],
      ["t", body(), { format: "csv", targetBatchBytes: 0 }, /targetBatchBytes/],
      ["t", body(), { format: "csv", idleTimeoutMs: -1 }, /idleTimeoutMs/],
      ["t", body(), { format: "csv", idleTimeoutMs: 1.5 }, /idleTimeoutMs/],
      ["t", body(), { format: "csv", maxLineBytes: 0 }, /maxLineBytes/],
    ];
    for (const [table, b, options, pattern] of bad) {
      // deno-lint-ignore no-explicit-any
      const error = await rejection(() => ingest(sql, table as any, b as any, options as any));
      assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
      assert.match(error.message, pattern);
    }
  } finally {
    await endPool(sql);
  }
});

test("ingest() upserts through a staging table: update all, some, nothing; later duplicates win", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  try {
    const reset = async () => {
      await admin.unsafe(`truncate ${table}`);
      await admin.unsafe(`insert into ${table} values (1, 'old1', 1, 1), (2, 'old2', 2, 2)`);
    };
    const body = () =>
      bodyOf(
        [
          `{"id": 2, "v": "new2a", "amount": 20}`,
          `{"id": 3, "v": "new3", "amount": 30}`,
          `{"id": 2, "v": "new2b", "amount": 21}`,
        ].join("\n"),
      );
    const rows = async () =>
      (await admin.unsafe(`select id, v, amount::int, n from ${table} order by id`)).map((r) =>
        `${r.id}:${r.v}:${r.amount}:${r.n}`
      );

    await reset();
    let result = await ingest(sql, table, body(), {
      format: "ndjson",
      onConflict: { key: ["id"], update: "all" },
    });
    assert.deepEqual(result, { rows: 3, batches: 1 });
    assert.deepEqual(await rows(), ["1:old1:1:1", "2:new2b:21:2", "3:new3:30:7"]);

    await reset();
    await ingest(sql, table, body(), {
      format: "ndjson",
      onConflict: { key: ["id"], update: ["v"] },
    });
    assert.deepEqual(await rows(), ["1:old1:1:1", "2:new2b:2:2", "3:new3:30:7"]);

    await reset();
    result = await ingest(sql, table, bodyOf("id,v\n2,x\n4,y\n4,z\n"), {
      format: "csv",
      onConflict: { key: ["id"], update: "nothing" },
    });
    assert.equal(result.rows, 3);
    assert.deepEqual(await rows(), ["1:old1:1:1", "2:old2:2:2", "4:y:null:7"]);

    // A key column missing from the body is bad input.
    const error = await rejection(() =>
      ingest(sql, table, bodyOf(`{"v": "x"}\n`), {
        format: "ndjson",
        onConflict: { key: ["id"], update: "all" },
      })
    );
    assert.equal(error.code, "BAD_INPUT");
    assert.match(error.message, /"id"/);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingest() applies upserts in byte-sized batches with the same result as one statement", {
  timeout: 60_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  try {
    const lines = (from: number, to: number, tag: string) =>
      Array.from(
        { length: to - from },
        (_, i) => `{"id": ${from + i}, "v": "${tag}${"x".repeat(40)}", "amount": ${from + i}}`,
      ).join("\n") + "\n";
    const sums: string[] = [];
    for (const targetBatchBytes of [Infinity, 16 * 1024]) {
      await admin.unsafe(`truncate ${table}`);
      await ingest(sql, table, bodyOf(lines(0, 20_000, "a"), 65536), { format: "ndjson" });
      // Overlapping keys, each twice: the later copy must win in every batch.
      const body = lines(10_000, 30_000, "b") + lines(15_000, 25_000, "c");
      const result = await ingest(sql, table, bodyOf(body, 65536), {
        format: "ndjson",
        onConflict: { key: ["id"], update: "all" },
        targetBatchBytes,
      });
      assert.equal(result.rows, 30_000);
      if (targetBatchBytes === Infinity) assert.equal(result.batches, 1);
      else assert.ok(result.batches > 10, `only ${result.batches} batches`);
      const [row] = await admin.unsafe(
        `select count(*)::int as n, count(*) filter (where v like 'c%')::int as c,
                count(*) filter (where v like 'b%')::int as b from ${table}`,
      );
      assert.deepEqual({ ...row }, { n: 30_000, c: 10_000, b: 10_000 });
      sums.push(await checksum(admin, table));
    }
    assert.equal(sums[0], sums[1]);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

/** An endless NDJSON body that counts the bytes pulled from it. */
function endlessBody(): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let id = 0;
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      let text = "";
      for (let i = 0; i < 1000; i++) text += `{"id": ${++id}, "v": "row ${id}", "amount": ${id}}\n`;
      const bytes = encoder.encode(text);
      pulled += bytes.length;
      controller.enqueue(bytes);
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => pulled };
}

test("ingest() reads the body only as fast as PostgreSQL stores it, and an abort rolls back", {
  timeout: 60_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  const controller = new AbortController();
  try {
    // A trigger that stalls the COPY for 3 s at row 50,000.
    await admin.unsafe(`create function ${table}_slow() returns trigger language plpgsql as $$
      begin if new.id = 50000 then perform pg_sleep(3); end if; return new; end $$`);
    await admin.unsafe(`create trigger slow before insert on ${table}
      for each row execute function ${table}_slow()`);
    const { body, pulled } = endlessBody();
    const reason = new Error("client went away");
    const running = ingest(sql, table, body, { format: "ndjson", signal: controller.signal });
    running.catch(() => {});
    const sleeping = async () =>
      (await admin`select 1 from pg_stat_activity
        where application_name = ${app} and wait_event = 'PgSleep'`).length > 0;
    assert.ok(await waitFor(sleeping, 10_000), "the COPY never reached the stalled row");
    const before = pulled();
    await new Promise((r) => setTimeout(r, 1500));
    const during = pulled() - before;
    // Socket buffers hold a few MB; without backpressure this would be hundreds of MB.
    assert.ok(during < 16 * 1024 * 1024, `${during} bytes pulled while PostgreSQL was stalled`);
    controller.abort(reason);
    const error = await rejection(() => running);
    assert.equal(error, reason);
    assert.equal(await count(admin, table), 0);
    await assertClean(sql, app, admin);
  } finally {
    controller.abort();
    await admin.unsafe(`drop table if exists ${table}`);
    await admin.unsafe(`drop function if exists ${table}_slow()`);
    await endPool(admin);
  }
});

test(
  "ingest() rolls back when the body errors, when aborted mid-body and when the connection dies",
  {
    timeout: 60_000,
  },
  async () => {
    const { sql, app } = connect();
    const admin = connect().sql;
    const table = await createPlain(admin);
    try {
      // 1. The body stream errors after 20,000 rows.
      let id = 0;
      const boom = new Error("upload broke");
      const failing = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (id >= 20_000) return controller.error(boom);
          let text = "";
          for (let i = 0; i < 1000; i++) text += `${++id},row,${id}\n`;
          controller.enqueue(encoder.encode(id === 1000 ? "id,v,amount\n" + text : text));
        },
      });
      assert.equal(await rejection(() => ingest(sql, table, failing, { format: "csv" })), boom);
      assert.equal(await count(admin, table), 0);

      // 2. Aborted while the body is flowing.
      for (const format of ["ndjson", "csv"] as const) {
        const { body, pulled } = endlessBody();
        const controller = new AbortController();
        const source = format === "csv"
          ? body.pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              start: (c) => c.enqueue(encoder.encode("id,v,amount\n")),
              transform: (chunk, c) => {
                const text = new TextDecoder().decode(chunk).replace(
                  /\{"id": (\d+), "v": "([^"]*)", "amount": (\d+)\}/g,
                  "$1,$2,$3",
                );
                c.enqueue(encoder.encode(text));
              },
            }),
          )
          : body;
        const running = ingest(sql, table, source, { format, signal: controller.signal });
        running.catch(() => {});
        assert.ok(
          await waitFor(() => Promise.resolve(pulled() > 2_000_000), 10_000),
          "the body was not read",
        );
        controller.abort();
        const error = await rejection(() => running);
        assert.equal(error.name, "AbortError", String(error));
        assert.equal(await count(admin, table), 0);
      }

      // 3. The connection is terminated mid-COPY.
      const { body, pulled } = endlessBody();
      const running = ingest(sql, table, body, { format: "ndjson" });
      running.catch(() => {});
      assert.ok(
        await waitFor(() => Promise.resolve(pulled() > 2_000_000), 10_000),
        "the body was not read",
      );
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${app}`;
      const error = await rejection(() => running);
      assert.ok(error instanceof Error, String(error));
      assert.equal(await count(admin, table), 0);
      // The pool still works afterwards (the dead connection was not released into it).
      const [row] = await sql`select 1 as one`;
      assert.equal(row?.one, 1);
      await assertClean(sql, app, admin);
    } finally {
      await admin.unsafe(`drop table if exists ${table}`);
      await endPool(admin);
    }
  },
);

/** A body that sends `text` and then nothing, until cancelled. */
function stallingBody(
  text: string,
): { body: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let sent = false;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(encoder.encode(text));
      }
      return new Promise<void>(() => {});
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, cancelled: () => cancelled };
}

test("ingest() ends a stalled body after idleTimeoutMs, rolled back, the connection freed", {
  timeout: 30_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  try {
    for (const format of ["ndjson", "csv"] as const) {
      const text = format === "csv"
        ? "id,v\n1,a\n2,b\n"
        : `{"id": 1, "v": "a"}\n{"id": 2, "v": "b"}\n`;
      const { body, cancelled } = stallingBody(text);
      const started = performance.now();
      const error = await rejection(() => ingest(sql, table, body, { format, idleTimeoutMs: 300 }));
      const took = performance.now() - started;
      assert.ok(error instanceof SluiceError, String(error));
      assert.equal(error.code, "IDLE_TIMEOUT");
      assert.ok(took >= 300 && took < 2000, `ended after ${took} ms`);
      assert.ok(cancelled(), "the body was not cancelled");
      assert.equal(await count(admin, table), 0);
      // No transaction left open, no lock held: the table can be altered at once.
      await admin.unsafe(`set lock_timeout = 1000; alter table ${table} add column x${format} int`);
    }

    // Time spent waiting for PostgreSQL is not idle time: a slow trigger does not end the ingest.
    await admin.unsafe(`create function ${table}_slow() returns trigger language plpgsql as $$
      begin if new.id = 3 then perform pg_sleep(1); end if; return new; end $$`);
    await admin.unsafe(`create trigger slow before insert on ${table}
      for each row execute function ${table}_slow()`);
    const result = await ingest(sql, table, bodyOf("id,v\n3,c\n4,d\n"), {
      format: "csv",
      idleTimeoutMs: 300,
    });
    assert.equal(result.rows, 2);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await admin.unsafe(`drop function if exists ${table}_slow()`);
    await endPool(admin);
  }
});

/** A body of one line that never ends (`prefix`, then `x` forever); counts the bytes pulled. */
function endlessLine(prefix: string, total = 64 * 1024 * 1024): {
  body: ReadableStream<Uint8Array>;
  pulled: () => number;
} {
  const chunk = new Uint8Array(1024 * 1024).fill(0x78);
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      // Bounded so that a missing limit fails the test instead of exhausting memory.
      if (pulled >= total) return controller.close();
      const bytes = pulled === 0 ? encoder.encode(prefix) : chunk;
      pulled += bytes.length;
      controller.enqueue(bytes);
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => pulled };
}

test("ingest() refuses a line longer than maxLineBytes as it grows, and echoes names cut short", {
  timeout: 60_000,
}, async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const table = await createPlain(admin);
  try {
    // An NDJSON line without end, at the default limit (16 MiB) and a lower one.
    for (const maxLineBytes of [undefined, 2 * 1024 * 1024]) {
      const limit = maxLineBytes ?? 16 * 1024 * 1024;
      const { body, pulled } = endlessLine(`{"id": 1}\n{"id": 2, "v": "`);
      const error = await rejection(() =>
        ingest(sql, table, body, { format: "ndjson", maxLineBytes })
      );
      assert.ok(error instanceof SluiceError, String(error));
      assert.equal(error.code, "LINE_TOO_LONG");
      assert.equal(
        error.message,
        `Cannot ingest line 2 of the NDJSON body: it is longer than maxLineBytes (${limit} bytes)`,
      );
      assert.ok(pulled() <= limit + 2 * 1024 * 1024, `${pulled()} bytes read`);
    }
    // A CSV header without end, and a CSV record.
    for (const prefix of ["id,v", "id,v\n1,"]) {
      const { body, pulled } = endlessLine(prefix);
      const error = await rejection(() =>
        ingest(sql, table, body, { format: "csv", maxLineBytes: 1024 * 1024 })
      );
      assert.equal((error as { code?: string }).code, "LINE_TOO_LONG", String(error));
      assert.match(error.message, prefix.includes("\n") ? /line 2 of the CSV body/ : /line 1 of/);
      assert.ok(pulled() <= 3 * 1024 * 1024, `${pulled()} bytes read`);
    }
    assert.equal(await count(admin, table), 0);

    // A huge unknown column name is echoed cut to 63 bytes.
    const name = "é".repeat(500_000);
    for (
      const [format, text] of [["csv", `id,${name}\n1,2\n`], [
        "ndjson",
        `{"id": 1, "${name}": 2}\n`,
      ]] as const
    ) {
      const error = await rejection(() => ingest(sql, table, bodyOf(text, 65536), { format }));
      assert.equal((error as { code?: string }).code, "BAD_INPUT", String(error));
      assert.ok(error.message.length < 200, `a message of ${error.message.length} characters`);
      assert.match(error.message, /column "é+"…/);
    }
    // Within the limit, a long line is fine.
    const long = "y".repeat(3 * 1024 * 1024);
    const result = await ingest(sql, table, bodyOf(`{"id": 9, "v": "${long}"}\n`, 65536), {
      format: "ndjson",
    });
    assert.equal(result.rows, 1);
    await assertClean(sql, app, admin);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test(
  "ingest() fails at once when its connection closes while it waits for the body; a pool of one recovers",
  {
    timeout: 30_000,
  },
  async () => {
    const { sql, app } = connect({ max: 1 });
    const admin = connect().sql;
    const table = await createPlain(admin);
    try {
      // Killed idle (the CSV header is not complete: no COPY yet), then killed mid-COPY.
      for (const text of ["id,v", "id,v\n1,a\n"]) {
        const { body, cancelled } = stallingBody(text);
        const running = ingest(sql, table, body, { format: "csv" });
        running.catch(() => {});
        const inTransaction = async () =>
          (await admin`select 1 from pg_stat_activity where application_name = ${app}
          and state in ('idle in transaction', 'active') and query ilike ${
            text.includes("\n") ? "copy%" : "%"
          }`).length > 0;
        assert.ok(await waitFor(inTransaction, 5000), "the ingest never began");
        await admin`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${app}`;
        const error = await Promise.race([
          rejection(() => running),
          new Promise<Error>((r) => setTimeout(() => r(new Error("still running")), 2000)),
        ]);
        assert.ok(
          ["CONNECTION_CLOSED", "57P01"].includes((error as { code?: string }).code ?? ""),
          String(error),
        );
        assert.ok(cancelled(), "the body was not cancelled");
        // The only connection, reconnected, serves the next ingest (a reservation) at once.
        const next = await ingest(sql, table, bodyOf("id,v\n7,x\n"), { format: "csv" });
        assert.equal(next.rows, 1);
        await admin.unsafe(`delete from ${table}`);
      }
      await assertClean(sql, app, admin);
    } finally {
      await admin.unsafe(`drop table if exists ${table}`);
      await endPool(admin);
    }
  },
);
