// The COPY path of the JSON formats: rows read through `COPY … TO STDOUT` (text format) and
// rendered client side must be byte-identical to PostgreSQL's own row_to_json, whatever the session
// settings; queries sluice cannot render that way fall back to the server's JSON.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamNdjson } from "../../mod.ts";
import { ChunkWriter } from "../../lib/formats/_chunk_writer.ts";
import { CopyJsonEncoder, jsonKindOf } from "../../lib/formats/copy_json.ts";
import { connect, endPool } from "../_db.ts";
import { assertClean, collect, createTypesTable, oneLine, rowJsonTexts, utf8 } from "./_oracle.ts";

const ndjson = (texts: string[]): string => texts.map((t) => oneLine(t) + "\n").join("");

// Types of the oracle table that row_to_json renders as something other than a scalar.
const SERVER_RENDERED = new Set(["text[]", "int[][]", "int4range", "tstzrange"]);
const scalar = (c: { name: string; type: string }) =>
  !SERVER_RENDERED.has(c.type) && c.name !== "t_enum" && c.name !== "t_composite";

/** A pool whose statements are recorded, to tell which path a stream took. */
function recorded(settings: Record<string, string> = {}) {
  const statements: string[] = [];
  const { sql, app } = connect({
    connection: settings,
    debug: (_connection: unknown, query: string) => void statements.push(query),
  });
  const took = () => {
    const copy = statements.some((s) => /^copy \(/i.test(s));
    const declare = statements.some((s) => /^declare /i.test(s));
    statements.length = 0;
    return copy && !declare ? "copy" : declare && !copy ? "cursor" : "both?";
  };
  return { sql, app, took };
}

const SETTINGS: [string, Record<string, string>, "copy" | "cursor"][] = [
  ["default settings", {}, "copy"],
  ["ISO, DMY dates, a +05:45 zone, verbose intervals, escaped bytea, 0 extra float digits", {
    DateStyle: "ISO, DMY",
    TimeZone: "Asia/Kathmandu",
    IntervalStyle: "postgres_verbose",
    bytea_output: "escape",
    extra_float_digits: "0",
  }, "copy"],
  ["a -03:30 zone", { TimeZone: "America/St_Johns" }, "copy"],
  ["SQL dates (rendered by the server instead)", { DateStyle: "SQL, DMY" }, "cursor"],
];

for (const [label, settings, path] of SETTINGS) {
  test(`streamNdjson() through COPY equals row_to_json for every scalar type (${label})`, {
    timeout: 120_000,
  }, async () => {
    const admin = connect().sql;
    const { sql, app, took } = recorded(settings);
    const table = await createTypesTable(admin, 12, scalar);
    try {
      await fc.assert(
        fc.asyncProperty(table.rows, fc.integer({ min: 1, max: 4 }), async (rows, first) => {
          await table.fill(rows);
          took();
          const ours = utf8(
            (await collect(
              streamNdjson(sql, table.query, { firstBatchRows: first, targetBatchBytes: 400 }),
            )).bytes,
          );
          assert.equal(took(), path);
          assert.equal(ours, ndjson(await rowJsonTexts(sql, table.query)));
        }),
        { numRuns: path === "copy" ? 40 : 10 },
      );
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await table.drop();
      await endPool(admin);
    }
  });
}

// Values the generators rarely or never produce, and the scalar types the oracle table lacks.
const EDGES = `
  select * from (values
    (1, '0044-03-15'::date, '0044-03-15 12:00:00.5'::timestamp, '0044-03-15 12:00:00+00'::timestamptz,
     'NaN'::float4, '-Infinity'::numeric, 32767::int2, e'a\\vb\\x01c\\x1f"\\\\'::text,
     '{"k": "x\\"y\\\\z",\n "n": [1,\t2]}'::json, '{"k": "x\\"y\\\\z"}'::jsonb, 1::oid, 'nm'::name,
     'c'::"char", 'v'::varchar(5), 'b'::char(3), '04:05:06.789'::time, '04:05:06+05:30'::timetz,
     B'101'::bit(3), B'1'::varbit, '08:00:2b:01:02:03'::macaddr, '10.1.0.0/16'::cidr,
     '08:00:2b:01:02:03:04:05'::macaddr8, -0.0::float8, 1e300::float8, 1.5e-7::float4),
    (2, '12345-06-07'::date, '12345-06-07 08:09:10'::timestamp, '1800-01-01 00:00:00'::timestamptz,
     'Infinity'::float4, 'NaN'::numeric, (-32768)::int2, ''::text, '"just a string"'::json,
     '[]'::jsonb, 4294967295::oid, '' :: name, ' '::"char", ''::varchar(5), ''::char(3),
     '24:00:00'::time, '00:00:00-14:59'::timetz, B'000'::bit(3), B''::varbit,
     'ff:ff:ff:ff:ff:ff'::macaddr, '::1/128'::cidr, '00:00:00:00:00:00:00:00'::macaddr8,
     'NaN'::float8, '-Infinity'::float8, '-Infinity'::float4),
    (3, 'infinity'::date, '-infinity'::timestamp, 'infinity'::timestamptz, null, null, null, null,
     null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
     null, null)
  ) as t(n, d, ts, tstz, f4, num, i2, txt, j, jb, o, nm, ch, vc, bp, tm, ttz, bt, vb, mac, cidr,
         mac8, zero, big, small)
  order by n`;

for (const zone of ["UTC", "Europe/Amsterdam", "Asia/Kathmandu", "Pacific/Chatham"]) {
  test(`streamNdjson() through COPY renders edge values like row_to_json (TimeZone ${zone})`, async () => {
    const admin = connect().sql;
    const { sql, app, took } = recorded({ TimeZone: zone });
    try {
      const ours = utf8((await collect(streamNdjson(sql, EDGES, { firstBatchRows: 1 }))).bytes);
      assert.equal(took(), "copy");
      assert.equal(ours, ndjson(await rowJsonTexts(sql, EDGES)));
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await endPool(admin);
    }
  });
}

test("streamNdjson() uses the server's JSON for parameters, arrays, enums and column transforms", async () => {
  const admin = connect().sql;
  const { sql, app, took } = recorded();
  try {
    const array = "select array[1, 2] as a, 'x' as b";
    assert.equal(utf8((await collect(streamNdjson(sql, array))).bytes), '{"a":[1,2],"b":"x"}\n');
    assert.equal(took(), "cursor");
    const param = sql`select ${"p"}::text as p, 2 as n`;
    assert.equal(utf8((await collect(streamNdjson(sql, param))).bytes), '{"p":"p","n":2}\n');
    assert.equal(took(), "cursor");
    const plain = sql`select ${sql("n")} from (select 3 as n) t`;
    assert.equal(utf8((await collect(streamNdjson(sql, plain))).bytes), '{"n":3}\n');
    assert.equal(took(), "copy", "a fragment without parameters goes through COPY");
    await assertClean(sql, app, admin);

    // postgres.js renames columns with transform.column.from; row_to_json keys must not change.
    const camel = connect({ transform: { column: { from: (s: string) => s.toUpperCase() } } });
    try {
      const text = utf8((await collect(streamNdjson(camel.sql, "select 1 as low"))).bytes);
      assert.equal(text, '{"low":1}\n');
    } finally {
      await endPool(camel.sql);
    }
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test("CopyJsonEncoder writes a value longer than a chunk, escapes and all", () => {
  const encoder = new CopyJsonEncoder([
    { name: "id", kind: jsonKindOf(23)! },
    { name: "body", kind: jsonKindOf(25)! },
  ]);
  const writer = new ChunkWriter(1024);
  const body = 'q"\\\\\x01'.repeat(1000); // COPY text of q"\<SOH>, a thousand times
  encoder.writeLine(writer, new TextEncoder().encode(`7\t${body}`));
  const text = utf8(Uint8Array.from(writer.take().flatMap((c) => [...c])));
  assert.equal(text, JSON.stringify({ id: 7, body: 'q"\\\x01'.repeat(1000) }));
});

// COPY text format of a string: backslash and the six control characters COPY escapes.
const copyText = (s: string): string =>
  s.replace(
    /[\\\b\f\n\r\t\v]/g,
    (c) =>
      ({
        "\\": "\\\\",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
      })[
        c
      ]!,
  );

test("CopyJsonEncoder escapes strings short and long, at any alignment (the long path skips plain bytes 4 at a time)", () => {
  const encoder = new CopyJsonEncoder([
    { name: "id", kind: "number" },
    { name: "body", kind: "string" },
  ]);
  const special = fc.constantFrom('"', "\\", "\u0001", "\u001f", "\b", "\n", "\v", "\t", "é", "😀");
  const body = fc.tuple(
    // Longer than 1 KiB takes the long path.
    fc.oneof(fc.string({ maxLength: 200 }), fc.string({ minLength: 1100, maxLength: 6000 })),
    fc.array(fc.tuple(fc.nat(), special), { maxLength: 8 }),
  ).map(([text, inserts]) => {
    const chars = [...text]; // code points: an insert never splits a surrogate pair
    for (const [at, c] of inserts) chars.splice(at % (chars.length + 1), 0, c);
    return chars.join("");
  });
  fc.assert(
    fc.property(body, fc.integer({ min: 64, max: 4096 }), fc.nat(7), (s, size, offset) => {
      const writer = new ChunkWriter(size);
      // At any alignment in a larger buffer, as the driver's messages are.
      const line = new TextEncoder().encode(`1\t${copyText(s)}`);
      const held = new Uint8Array(offset + line.length + 5);
      held.set(line, offset);
      encoder.writeLine(writer, held.subarray(offset, offset + line.length));
      const text = utf8(Uint8Array.from(writer.take().flatMap((c) => [...c])));
      assert.equal(text, JSON.stringify({ id: 1, body: s }));
    }),
    { numRuns: 300 },
  );
});

test("streamNdjson() through COPY renders fields longer than a chunk like row_to_json", async () => {
  const admin = connect().sql;
  const { sql, app, took } = recorded();
  try {
    // A 100,000-digit numeric (copied across chunks), a long string with escapes, long json, and
    // short fields around them on the same line.
    const q = `select 1 as id, repeat('9', 100000)::numeric as n, repeat(e'x"\\\\\\t', 40000) as s,
      ('[' || repeat('"a\\\\n",', 30000) || '0]')::json as j, 'NaN'::numeric as nan, true as b`;
    const ours = utf8((await collect(streamNdjson(sql, q))).bytes);
    assert.equal(took(), "copy");
    assert.equal(ours, ndjson(await rowJsonTexts(sql, q)));
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});
