import type postgres from "postgres";

/** The postgres.js connection ingest runs on (a reserved connection). */
// deno-lint-ignore no-explicit-any
export type Conn = postgres.ReservedSql<any>;

/**
 * How an NDJSON value is turned into COPY text for a column: by the PostgreSQL type's shape.
 *
 * - `scalar`: JSON strings go in as their text, numbers and booleans as written.
 * - `json`: the value's JSON text, whatever its kind (json, jsonb and domains over them).
 * - `array`: a JSON array becomes an array literal (`{…}`) of the element kind.
 * - `composite`: a JSON object becomes a record literal (`(…)`) of the fields, in order.
 */
export type ValueKind =
  | { readonly kind: "scalar" }
  | { readonly kind: "json" }
  | { readonly kind: "array"; readonly element: ValueKind; readonly delimiter: string }
  | { readonly kind: "composite"; readonly fields: readonly FieldKind[] };

/** A field of a composite type. */
export interface FieldKind {
  /** The attribute name. */
  readonly name: string;
  /** Its value kind. */
  readonly type: ValueKind;
}

/** A column of the target table. */
export interface TargetColumn {
  /** The name, as in the catalog. */
  readonly name: string;
  /** The type's oid. */
  readonly typeOid: number;
  /** True for a generated column (COPY cannot write it). */
  readonly generated: boolean;
}

/** The target table, resolved through the catalog. */
export interface Target {
  /** `"schema"."table"`, quoted, safe to splice into SQL. */
  readonly sql: string;
  /** The table's name (unquoted). */
  readonly name: string;
  /** True when the table lives in a temporary schema. */
  readonly temporary: boolean;
  /** Its columns, in order. */
  readonly columns: readonly TargetColumn[];
  /** Column name → column. */
  readonly byName: ReadonlyMap<string, TargetColumn>;
}

const MAX_IDENTIFIER_BYTES = 63;

/**
 * Quotes a name taken from a body for an error message (`"name"`, JSON escapes), cut to
 * PostgreSQL's identifier length (63 bytes) with `…`, so an error never echoes a huge header.
 *
 * @param name The name.
 * @returns The quoted, shortened name.
 */
export function quoteName(name: string): string {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length <= MAX_IDENTIFIER_BYTES) return JSON.stringify(name);
  let end = MAX_IDENTIFIER_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
  return `${JSON.stringify(new TextDecoder().decode(bytes.subarray(0, end)))}…`;
}

/**
 * Quotes an identifier for SQL: wrapped in double quotes, inner quotes doubled (what postgres.js's
 * `sql(name)` does to each dot-separated part).
 *
 * @param name The identifier, taken literally.
 * @returns The quoted identifier.
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Checks an identifier given as an argument: a non-empty string without NUL, at most 63 bytes.
 *
 * @param what What the identifier names, for the message ("table", "column").
 * @param name The value.
 * @throws {TypeError | RangeError} When it is not one.
 */
export function checkIdentifier(what: string, name: unknown): asserts name is string {
  if (typeof name !== "string" || name === "" || name.includes("\0")) {
    throw new TypeError(
      `Cannot use ${what} as an identifier: current value is ${
        JSON.stringify(name) ?? String(name)
      }`,
    );
  }
  if (new TextEncoder().encode(name).length > MAX_IDENTIFIER_BYTES) {
    throw new RangeError(
      `Cannot use ${what} as an identifier longer than ${MAX_IDENTIFIER_BYTES} bytes: current value is ${
        JSON.stringify(name)
      }`,
    );
  }
}

/**
 * Splits and checks a table name: `"table"` or `"schema.table"`, each part taken literally (not
 * case-folded), like postgres.js's `sql(name)`.
 *
 * @param table The table argument.
 * @returns The quoted name.
 * @throws {TypeError | RangeError} When it is not a valid name.
 */
export function quoteTableName(table: unknown): string {
  if (typeof table !== "string") {
    throw new TypeError(`Cannot use table as a table name: current value is ${String(table)}`);
  }
  const parts = table.split(".");
  if (parts.length > 2) {
    throw new TypeError(
      `Cannot use table as "table" or "schema.table": current value is ${JSON.stringify(table)}`,
    );
  }
  for (const part of parts) checkIdentifier("table", part);
  return parts.map(quoteIdent).join(".");
}

/**
 * Resolves the table through the catalog. A table that does not exist fails with PostgreSQL's own
 * error (42P01).
 *
 * @param conn The connection.
 * @param quoted The quoted table name.
 * @returns The table, schema-qualified, with its columns.
 */
export async function resolveTarget(conn: Conn, quoted: string): Promise<Target> {
  const rows = await conn.unsafe(
    `select n.nspname, c.relname, n.oid = pg_my_temp_schema() as temporary,
            a.attname, a.atttypid::int as type, a.attgenerated <> '' as generated
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where c.oid = $1::regclass
      order by a.attnum`,
    [quoted],
  );
  const first = rows[0]!;
  const columns: TargetColumn[] = [];
  for (const row of rows) {
    if (row.attname === null) continue;
    columns.push({ name: row.attname, typeOid: row.type, generated: row.generated });
  }
  return {
    sql: `${quoteIdent(first.nspname)}.${quoteIdent(first.relname)}`,
    name: first.relname,
    temporary: first.temporary,
    columns,
    byName: new Map(columns.map((c) => [c.name, c])),
  };
}

const JSON_OID = 114;
const JSONB_OID = 3802;

interface TypeRow {
  oid: number;
  typtype: string;
  typcategory: string;
  typelem: number;
  typdelim: string;
  typrelid: number;
  typbasetype: number;
}

/**
 * Describes how NDJSON values map to each of the given types (domains resolved to their base,
 * arrays to their element, composites to their fields), with one catalog query per level.
 *
 * @param conn The connection.
 * @param oids The column types.
 * @returns oid → kind.
 */
export async function describeTypes(
  conn: Conn,
  oids: readonly number[],
): Promise<Map<number, ValueKind>> {
  const types = new Map<number, TypeRow>();
  const fields = new Map<number, { name: string; type: number }[]>();
  let pending = [...new Set(oids)];
  for (let depth = 0; pending.length > 0 && depth < 32; depth++) {
    const rows = await conn.unsafe(
      `select t.oid::int, t.typtype, t.typcategory, t.typelem::int, t.typdelim::text,
              t.typrelid::int, t.typbasetype::int,
              (select coalesce(json_agg(json_build_object('name', a.attname, 'type', a.atttypid::int)
                                        order by a.attnum), '[]')
                 from pg_attribute a
                where a.attrelid = t.typrelid and t.typtype = 'c' and a.attnum > 0
                  and not a.attisdropped) as fields
         from pg_type t where t.oid = any($1::oid[])`,
      [pending],
    ) as unknown as (TypeRow & { fields: { name: string; type: number }[] })[];
    const next: number[] = [];
    const want = (oid: number) => {
      if (oid !== 0 && !types.has(oid)) next.push(oid);
    };
    for (const row of rows) {
      types.set(row.oid, row);
      if (row.typtype === "c") {
        fields.set(row.oid, row.fields);
        for (const f of row.fields) want(f.type);
      }
      if (row.typtype === "d") want(row.typbasetype);
      if (row.typcategory === "A") want(row.typelem);
    }
    pending = [...new Set(next)];
  }
  const kinds = new Map<number, ValueKind>();
  const kindOf = (oid: number, depth: number): ValueKind => {
    const known = kinds.get(oid);
    if (known) return known;
    const row = types.get(oid);
    let kind: ValueKind = { kind: "scalar" };
    if (row !== undefined && depth < 32) {
      if (oid === JSON_OID || oid === JSONB_OID) kind = { kind: "json" };
      else if (row.typtype === "d") kind = kindOf(row.typbasetype, depth + 1);
      else if (row.typcategory === "A" && row.typelem !== 0) {
        const element = types.get(row.typelem);
        kind = {
          kind: "array",
          element: kindOf(row.typelem, depth + 1),
          delimiter: element?.typdelim ?? ",",
        };
      } else if (row.typtype === "c") {
        kind = {
          kind: "composite",
          fields: (fields.get(oid) ?? []).map((f) => ({
            name: f.name,
            type: kindOf(f.type, depth + 1),
          })),
        };
      }
    }
    kinds.set(oid, kind);
    return kind;
  };
  for (const oid of oids) kindOf(oid, 0);
  return kinds;
}
