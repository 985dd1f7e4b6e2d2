// Shared helpers for the format oracle tests: a table with a column of every type the issue lists,
// fast-check generators of tricky values for it, and PostgreSQL's own outputs to compare with.
import assert from "node:assert/strict";
import fc from "fast-check";
import { busySessions, endPool, sessions, uniqueName, waitFor } from "../_db.ts";
import type { Sql } from "../_db.ts";

/** Reads a byte stream to the end, keeping the chunks. */
export async function collect(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; chunks: Uint8Array[] }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return { bytes: concat(chunks), chunks };
}

/** Concatenates byte arrays. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.length;
  return out;
}

/** `COPY (query) TO STDOUT (FORMAT csv[, HEADER])` as PostgreSQL prints it. */
export async function copyCsv(sql: Sql, query: string, header = true): Promise<Uint8Array> {
  const options = header ? "format csv, header" : "format csv";
  const readable = await sql.unsafe(`copy (${query}) to stdout (${options})`).readable();
  const chunks: Uint8Array[] = [];
  for await (const chunk of readable) chunks.push(new Uint8Array(chunk as Uint8Array));
  return concat(chunks);
}

/** `row_to_json` of each row of the query, as PostgreSQL renders it. */
export async function rowJsonTexts(sql: Sql, query: string): Promise<string[]> {
  const rows = await sql.unsafe(`select row_to_json(x.*)::text as j from (${query}) x`);
  return rows.map((r) => r.j as string);
}

/** What NDJSON and SSE do to a row text: raw CR/LF (JSON whitespace) become spaces. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]/g, " ");
}

const text = new TextDecoder();
/** Decodes UTF-8. */
export function utf8(bytes: Uint8Array): string {
  return text.decode(bytes);
}

// --- values ----------------------------------------------------------------------------------

const nul = (s: string): boolean => !s.includes("\u0000");
const tricky = fc.constantFrom(
  "",
  " ",
  ",",
  '"',
  '""',
  "a,b",
  'say "hi"',
  "\r",
  "\n",
  "\r\n",
  "line1\nline2",
  "\\.",
  "\\N",
  "NULL",
  " padded ",
  "tab\there",
  "é€😀",
  "日本語,テキスト",
  "'quoted'",
  "back\\slash",
  "{1,2}",
  "(a,b)",
);
const textValue = fc.oneof(
  tricky,
  fc.string({ unit: "grapheme", maxLength: 20 }).filter(nul),
  fc.string({ unit: "binary", maxLength: 12 }).filter(nul),
  fc.array(tricky, { maxLength: 4 }).map((a) => a.join("")),
);
const quoteElement = (s: string): string => `"${s.replace(/["\\]/g, (m) => "\\" + m)}"`;
const digits = fc.stringMatching(/^[0-9]{1,40}$/);
const numeric = fc.oneof(
  fc.constantFrom("NaN", "Infinity", "-Infinity", "0", "-0.000", "1e-30", "123456789e100"),
  fc.tuple(fc.bigInt({ min: -(10n ** 60n), max: 10n ** 60n }), fc.option(digits)).map((
    [i, f],
  ) => f === null ? String(i) : `${i}.${f}`),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
);
const float8 = fc.oneof(
  fc.constantFrom("NaN", "Infinity", "-Infinity", "-0", "1e-320", "1.7976931348623157e308"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
);
const date = fc.date({
  min: new Date("0001-01-01T00:00:00Z"),
  max: new Date("9999-12-31T23:59:59Z"),
  noInvalidDate: true,
});
const timestamp = fc.oneof(
  fc.constantFrom("infinity", "-infinity", "2000-02-29 12:00:00.123456"),
  date.map((d) => d.toISOString().replace("T", " ").replace("Z", "")),
);
const timestamptz = fc.oneof(
  fc.constantFrom(
    "infinity",
    "-infinity",
    "1999-12-31 23:59:59.999999+14",
    "1900-01-01 00:00+05:53:28",
  ),
  date.map((d) => d.toISOString()),
);
const interval = fc.tuple(
  fc.integer({ min: -3000, max: 3000 }),
  fc.integer({ min: -500, max: 500 }),
  fc.integer({ min: -10_000, max: 10_000 }),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.integer({ min: 0, max: 999_999 }),
).map(([y, m, d, s, us]) =>
  `${y} years ${m} mons ${d} days ${s}.${String(us).padStart(6, "0")} seconds`
);
const jsonText = fc.oneof(
  fc.constantFrom('{"a":\n 1}', " [1,\r\n 2] ", '"x"', "null", '{"k": "v, \\"w\\""}', "[]", "{}"),
  fc.json({ maxDepth: 2 }),
);
const jsonbText = jsonText.filter((s) => !s.includes("\\u0000"));
const arrayText = fc.array(fc.option(textValue, { nil: null }), { maxLength: 4 }).map((a) =>
  `{${a.map((e) => e === null ? "NULL" : quoteElement(e)).join(",")}}`
);
const nestedArray = fc.integer({ min: 1, max: 3 }).chain((cols) =>
  fc.array(fc.array(fc.option(fc.integer(), { nil: null }), { minLength: cols, maxLength: cols }), {
    minLength: 1,
    maxLength: 3,
  })
).map((rows) => `{${rows.map((r) => `{${r.map((v) => v ?? "NULL").join(",")}}`).join(",")}}`);
const int4range = fc.oneof(
  fc.constant("empty"),
  fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 1000 }), fc.boolean())
    .map(([a, n, inc]) => `${inc ? "[" : "("}${a},${a + n}]`),
  fc.constantFrom("(,5)", "[3,)", "(,)"),
);
const tstzrange = fc.tuple(date, date).map(([a, b]) =>
  a <= b ? `["${a.toISOString()}","${b.toISOString()}")` : "empty"
);
const ENUM_LABELS = ["a", "b c", 'd,"e"', "ü", "", "x\ny"];
const composite = fc.tuple(
  fc.option(fc.integer(), { nil: null }),
  fc.option(textValue, { nil: null }),
)
  .map(([i, t]) => `(${i ?? ""},${t === null ? "" : quoteElement(t)})`);
const xmlEscape = (s: string): string =>
  s.replace(/[&<>"]/g, (m) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[m]!);
const xml = fc.oneof(
  fc.constantFrom("<a>x</a>", '<a b="1,2">"q"</a>', "plain, text", "<r>\n</r>"),
  // deno-lint-ignore no-control-regex
  textValue.filter((s) => !/[\u0001-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(s)).map((
    s,
  ) => `<r>${xmlEscape(s)}</r>`),
);
const bytea = fc.uint8Array({ maxLength: 24 }).map((b) =>
  "\\x" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("")
);

/** A column of the oracle table: its SQL type and a generator of text-format input. */
export interface TypeColumn {
  name: string;
  type: string;
  value: fc.Arbitrary<string>;
}

/** Every type the issue lists (enum and composite types are created per table). */
export function typeColumns(enumType: string, compositeType: string): TypeColumn[] {
  return [
    { name: "t_text", type: "text", value: textValue },
    { name: "t_numeric", type: "numeric", value: numeric },
    {
      name: "t_bigint",
      type: "bigint",
      value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
    },
    { name: "t_int", type: "int", value: fc.integer().map(String) },
    { name: "t_float8", type: "float8", value: float8 },
    { name: "t_bool", type: "bool", value: fc.constantFrom("t", "f") },
    { name: "t_bytea", type: "bytea", value: bytea },
    {
      name: "t_date",
      type: "date",
      value: fc.oneof(
        fc.constantFrom("infinity", "-infinity"),
        date.map((d) => d.toISOString().slice(0, 10)),
      ),
    },
    { name: "t_timestamp", type: "timestamp", value: timestamp },
    { name: "t_timestamptz", type: "timestamptz", value: timestamptz },
    { name: "t_interval", type: "interval", value: interval },
    { name: "t_json", type: "json", value: jsonText },
    { name: "t_jsonb", type: "jsonb", value: jsonbText },
    { name: "t_text_array", type: "text[]", value: arrayText },
    { name: "t_int_matrix", type: "int[][]", value: nestedArray },
    { name: "t_int4range", type: "int4range", value: int4range },
    { name: "t_tstzrange", type: "tstzrange", value: tstzrange },
    { name: "t_enum", type: enumType, value: fc.constantFrom(...ENUM_LABELS) },
    { name: "t_composite", type: compositeType, value: composite },
    { name: "t_uuid", type: "uuid", value: fc.uuid() },
    {
      name: "t_inet",
      type: "inet",
      value: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant("10.0.0.0/8")),
    },
    {
      name: "t_money",
      type: "money",
      value: fc.integer({ min: -1e9, max: 1e9 }).map((c) => (c / 100).toFixed(2)),
    },
    { name: "t_xml", type: "xml", value: xml },
  ];
}

/** A table with one column of every listed type, plus an `n` column giving the row order. */
export interface TypesTable {
  name: string;
  columns: TypeColumn[];
  /** Generates rows: one text-format value or null per column. */
  rows: fc.Arbitrary<(string | null)[][]>;
  /** Replaces the table's content. */
  fill(rows: (string | null)[][]): Promise<void>;
  /** The query the tests stream and COPY. */
  query: string;
  drop(): Promise<void>;
}

/** Creates the table (a real one: the stream and COPY run on different connections). */
export async function createTypesTable(
  admin: Sql,
  maxRows = 12,
  keep: (column: TypeColumn) => boolean = () => true,
): Promise<TypesTable> {
  const name = uniqueName("fmt");
  const enumType = `${name}_enum`;
  const compositeType = `${name}_comp`;
  await admin.unsafe(
    `create type ${enumType} as enum (${
      ENUM_LABELS.map((l) => `'${l.replace(/'/g, "''")}'`).join(",")
    })`,
  );
  await admin.unsafe(`create type ${compositeType} as (x int, y text)`);
  const columns = typeColumns(enumType, compositeType).filter(keep);
  await admin.unsafe(
    `create table ${name} (n int primary key, ${
      columns.map((c) => `${c.name} ${c.type}`).join(", ")
    })`,
  );
  const row = fc.tuple(...columns.map((c) => fc.option(c.value, { nil: null, freq: 6 })));
  return {
    name,
    columns,
    rows: fc.array(row, { minLength: 0, maxLength: maxRows }),
    query: `select * from ${name} order by n`,
    async fill(rows) {
      await admin.unsafe(`truncate ${name}`);
      if (rows.length === 0) return;
      const params: (string | null)[] = [];
      const tuples = rows.map((values, i) => {
        const cells = values.map((v, j) => {
          params.push(v);
          return `$${params.length}::text::${columns[j]!.type}`;
        });
        return `(${i}, ${cells.join(", ")})`;
      });
      await admin.unsafe(`insert into ${name} values ${tuples.join(", ")}`, params);
    },
    async drop() {
      await admin.unsafe(`drop table if exists ${name}`);
      await admin.unsafe(`drop type if exists ${compositeType}`);
      await admin.unsafe(`drop type if exists ${enumType}`);
    },
  };
}

/** Asserts that the app has no session in a transaction and that its pool drains. */
export async function assertClean(sql: Sql, app: string, admin: Sql): Promise<void> {
  const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 3000);
  assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
  await endPool(sql);
  const gone = await waitFor(async () => (await sessions(admin, app)).length === 0, 3000);
  assert.ok(gone, "the pool did not close its connections");
}

/** Chunks are coalesced: none above 64 KiB, and far fewer than rows. */
export function assertCoalesced(chunks: readonly Uint8Array[], rows: number): void {
  for (const c of chunks) assert.ok(c.length <= 64 * 1024, `a chunk of ${c.length} bytes`);
  assert.ok(chunks.every((c) => c.length > 0), "an empty chunk");
  if (rows >= 1000) {
    assert.ok(chunks.length * 20 < rows, `${chunks.length} chunks for ${rows} rows`);
  }
}

/** Byte equality with a readable message (deepEqual's diff of megabytes takes minutes). */
export function assertSameBytes(ours: Uint8Array, theirs: Uint8Array, label = ""): void {
  const n = Math.min(ours.length, theirs.length);
  let i = 0;
  while (i < n && ours[i] === theirs[i]) i++;
  if (i === n && ours.length === theirs.length) return;
  const around = (b: Uint8Array): string =>
    JSON.stringify(utf8(b.subarray(Math.max(0, i - 80), i + 80)));
  assert.fail(
    `${label} bytes differ at offset ${i} (lengths ${ours.length} vs ${theirs.length}):\n` +
      `ours:   ${around(ours)}\ntheirs: ${around(theirs)}`,
  );
}
