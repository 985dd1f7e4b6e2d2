import { decodeRawRows } from "./sources/postgres_cursor.ts";
import type { PostgresSource, RawBatchRows, RawRow, Row, Sql } from "./sources/postgres_cursor.ts";
import { normalizeQuery, runQuery, toJsonRows } from "./sources/postgres_query.ts";
import type { NormalQuery, Query } from "./sources/postgres_query.ts";

/**
 * Builds the query for one include: given the distinct, non-null values of the parents' `key`
 * column in a batch, returns the query for the related rows, in any form a stream accepts, e.g.
 * ``(keys) => sql`select * from items where order_id = any(${keys})` `` or
 * `(keys) => db.selectFrom("items").selectAll().where("order_id", "in", keys).compile()`. Its
 * `order by` sets the order of a `many` array.
 */
// deno-lint-ignore no-explicit-any
export type IncludeQuery = (keys: any[]) => Query;

/** One include: how parent rows find their related rows. */
export interface IncludeBase {
  /** The parent's column holding the key (as it appears in the parent rows). */
  key: string;
  /** The related rows' column matched against `key`. */
  childKey: string;
  /** Includes of the related rows themselves (one more query per nested include per batch). */
  include?: IncludeMap;
}

/** Attaches an array of related rows (one-to-many), `[]` when there are none. */
export interface IncludeMany extends IncludeBase {
  /** The query for the related rows of a batch's keys. */
  many: IncludeQuery;
  /** Not allowed with `many`. */
  one?: undefined;
}

/** Attaches one related row (many-to-one, one-to-one) or `null` when there is none. */
export interface IncludeOne extends IncludeBase {
  /** The query for the related rows of a batch's keys; the first row per key is attached. */
  one: IncludeQuery;
  /** Not allowed with `one`. */
  many?: undefined;
}

/** An include: `many` (an array) or `one` (an object or `null`). */
export type Include = IncludeMany | IncludeOne;

/**
 * Related rows to load per batch (the `include` stream option): the property name to attach → how
 * to load it. The streaming-compatible alternative to an eager JOIN (which repeats each parent
 * once per child) and to one query per row (N+1).
 *
 * - For each fetched batch, each include runs exactly one query with the batch's distinct keys
 *   (nested includes: one more query each, over all the related rows of the level above), then the
 *   batch is emitted with the related rows attached. No keys in a batch: no query.
 * - Byte budget: a batch's `bytes` (what `onBatch` reports and the tuner sizes the next fetch
 *   from) is the parents' text-format bytes plus those of every related row loaded for it, at
 *   every level (with JSON output, the bytes of the related rows' JSON texts). A batch therefore
 *   holds about `targetBatchBytes` of parents and related rows together; one parent's related rows
 *   are never split, so a parent with 100,000 children makes one batch of that size, after which
 *   the next fetch shrinks.
 * - The queries run on the stream's own connection between fetches (inside its read-only
 *   transaction, under its `statementTimeoutMs`, cancelled by abort), so a pool of one connection
 *   is enough. In keyset mode, which holds no connection between pages, they run on the pool.
 * - An include query that fails ends the stream like any other error, with PostgreSQL's error.
 * - `key`/`childKey` name properties as they appear in the rows: after postgres.js column
 *   transforms for objects, PostgreSQL's own names for JSON output (`row_to_json` does not
 *   transform). An include's name must not be a column of the rows it is attached to.
 *
 * @example Orders with their items, each item with its product
 * ```ts ignore
 * const include: IncludeMap = {
 *   items: {
 *     key: "id",
 *     childKey: "order_id",
 *     many: (ids) => sql`select * from order_items where order_id = any(${ids}) order by id`,
 *     include: {
 *       product: {
 *         key: "product_id",
 *         childKey: "id",
 *         one: (ids) => sql`select * from products where id = any(${ids})`,
 *       },
 *     },
 *   },
 * };
 * for await (const order of streamRows(sql, "select * from orders", { include })) {
 *   console.log(order.id, order.items.map((item) => item.product?.title));
 * }
 * ```
 */
export interface IncludeMap {
  /** The include attached under this property name. */
  [name: string]: Include;
}

/** Runs an include query in raw mode (text-format bytes per value, columns attached). */
export type RawQueryRunner = (query: NormalQuery) => Promise<RawBatchRows>;

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array";
  return String(value);
}

/**
 * Checks the shape of an `include` option, recursively.
 *
 * @param include The caller's value.
 * @param path The option's name, for messages.
 * @throws {TypeError} On anything that is not an {@linkcode IncludeMap}.
 *
 * @example A `many` without a `childKey`
 * ```ts
 * import { checkIncludeMap } from "./load_includes.ts";
 * import assert from "node:assert/strict";
 *
 * // deno-lint-ignore no-explicit-any
 * assert.throws(() => checkIncludeMap({ items: { key: "id", many: () => null } } as any), TypeError);
 * ```
 */
export function checkIncludeMap(include: unknown, path = "include"): void {
  if (include === null || typeof include !== "object" || Array.isArray(include)) {
    throw new TypeError(
      `Cannot use ${path} as a map of includes: current value is ${describe(include)}`,
    );
  }
  for (const [name, spec] of Object.entries(include)) {
    const at = `${path}.${name}`;
    if (spec === null || typeof spec !== "object") {
      throw new TypeError(`Cannot use ${at} as an include: current value is ${describe(spec)}`);
    }
    const s = spec as Record<string, unknown>;
    for (const field of ["key", "childKey"]) {
      if (typeof s[field] !== "string" || s[field] === "") {
        throw new TypeError(
          `Cannot use ${at}.${field} as a column name: current value is ${describe(s[field])}`,
        );
      }
    }
    const many = typeof s.many === "function";
    const one = typeof s.one === "function";
    if (many === one || (s.many !== undefined && !many) || (s.one !== undefined && !one)) {
      throw new TypeError(
        `Cannot use ${at} as an include: it needs exactly one of many or one as a function, current value has many: ${
          describe(s.many)
        }, one: ${describe(s.one)}`,
      );
    }
    if (s.include !== undefined) checkIncludeMap(s.include, `${at}.include`);
  }
}

/**
 * A runner that sends include queries through `sql`'s pool.
 *
 * @param sql The postgres.js instance.
 * @returns A runner.
 */
export function poolRunner(sql: Sql): RawQueryRunner {
  return (query) => runQuery(sql, query).raw() as unknown as Promise<RawBatchRows>;
}

/**
 * The runner for a stream's includes: the source's own connection when it has one (no second
 * connection, so no pool deadlock; the same `statement_timeout`; cancelled by `interrupt()`),
 * else the pool.
 *
 * @param sql The postgres.js instance.
 * @param source The stream's source.
 * @returns A runner.
 */
export function includeRunner(
  sql: Sql,
  source: Pick<PostgresSource<unknown>, "query">,
): RawQueryRunner {
  return source.query ? (query) => source.query!(query) : poolRunner(sql);
}

// Keys of the parents and of the related rows are matched on a text form, so that an int4 `id`
// (a number) matches a bigint `order_id` (a string in postgres.js) and JSON numbers match too.
function keyText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) {
    let hex = "\\x";
    for (let i = 0; i < value.length; i++) hex += value[i]!.toString(16).padStart(2, "0");
    return hex;
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** How the loader reads and writes one kind of row (objects, or JSON texts). */
interface RowKind<R> {
  /** Runs the include query and returns its rows and their bytes. */
  fetch(query: NormalQuery): Promise<{ rows: R[]; bytes: number }>;
  /** The value of a column of a row. */
  get(row: R, column: string): unknown;
  /** True when the row already has a property `name`. */
  has(row: R, name: string): boolean;
  /** Attaches `value` (an array, a row or null) as `name`. */
  attach(row: R, name: string, value: R[] | R | null): void;
}

function queryOf(name: string, spec: Include, keys: unknown[]): NormalQuery {
  const query = spec.many ? spec.many(keys) : spec.one!(keys);
  try {
    return normalizeQuery(query);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new TypeError(
      `Cannot use the result of include.${name}.${
        spec.many ? "many" : "one"
      }() as a sql query: current value is ${describe(query)}`,
      { cause: error },
    );
  }
}

async function loadLevel<R>(
  rows: readonly R[],
  include: IncludeMap,
  kind: RowKind<R>,
): Promise<number> {
  let bytes = 0;
  // Sequential, not Promise.all: every query may run on the stream's one connection, and one
  // query in flight at a time is what `interrupt()` can cancel.
  for (const [name, spec] of Object.entries(include)) {
    const keys: unknown[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (kind.has(row, name)) {
        throw new TypeError(
          `Cannot attach include.${name} to a row: current value is a row that already has a column named ${name}`,
        );
      }
      const value = kind.get(row, spec.key);
      const text = keyText(value);
      if (text !== undefined && !seen.has(text)) seen.add(text), keys.push(value);
    }
    const groups = new Map<string, R[]>();
    if (keys.length > 0) {
      const children = await kind.fetch(queryOf(name, spec, keys));
      bytes += children.bytes;
      if (spec.include) bytes += await loadLevel(children.rows, spec.include, kind);
      for (const child of children.rows) {
        const text = keyText(kind.get(child, spec.childKey));
        if (text === undefined) continue;
        const group = groups.get(text);
        if (group) group.push(child);
        else groups.set(text, [child]);
      }
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const text = keyText(kind.get(row, spec.key));
      const group = text === undefined ? undefined : groups.get(text);
      kind.attach(row, name, spec.many ? (group ?? []) : (group?.[0] ?? null));
    }
  }
  return bytes;
}

function sumBytes(rows: readonly RawRow[]): number {
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    for (let j = 0; j < row.length; j++) bytes += row[j]?.length ?? 0;
  }
  return bytes;
}

function objectKind(sql: Sql, run: RawQueryRunner): RowKind<Row> {
  return {
    async fetch(query) {
      const raw = await run(query);
      return { rows: decodeRawRows(sql, raw.columns ?? [], raw), bytes: sumBytes(raw) };
    },
    get: (row, column) => row[column],
    has: (row, name) => Object.hasOwn(row, name),
    attach(row, name, value) {
      row[name] = value;
    },
  };
}

/**
 * Loads the related rows of `rows` and attaches them, running exactly one query per include
 * (nested ones included) for the whole array — never one per row. `many` attaches an array in the
 * include query's order (`[]` when none), `one` the first matching row or `null`. Parents whose
 * key is `null` get `[]`/`null`; keys match when their text forms are equal, so an `int4` key
 * matches a `bigint` one. An include whose parents have no keys runs no query.
 *
 * The queries run in order through `sql`'s pool. Inside a stream (the `include` stream option)
 * they run on the stream's own connection instead, so a pool of one connection is enough.
 *
 * @typeParam T The row type.
 * @param sql The postgres.js instance the include queries are built with.
 * @param rows Parent rows (objects); they are changed in place.
 * @param include What to load: property name → `{ key, childKey, many | one, include? }`.
 * @returns The bytes of all related rows loaded (text-format bytes of their values, the same
 * measure as a batch's `bytes`).
 * @throws {TypeError} On a bad `include`, or a row that already has a property of an include's name.
 *
 * @example Attach items (and their product) to a page of orders
 * ```ts ignore
 * const orders = await sql`select * from orders order by id limit 100`;
 * await loadIncludes(sql, orders, {
 *   items: {
 *     key: "id",
 *     childKey: "order_id",
 *     many: (ids) => sql`select * from order_items where order_id = any(${ids}) order by id`,
 *     include: {
 *       product: {
 *         key: "product_id",
 *         childKey: "id",
 *         one: (ids) => sql`select * from products where id = any(${ids})`,
 *       },
 *     },
 *   },
 * });
 * ```
 */
export function loadIncludes<T extends object = Row>(
  sql: Sql,
  rows: T[],
  include: IncludeMap,
): Promise<number> {
  checkIncludeMap(include);
  return loadIncludesWith(sql, rows, include, poolRunner(sql));
}

/**
 * {@linkcode loadIncludes} with the queries sent through `run` (a stream's own connection).
 *
 * @param sql The postgres.js instance (for its type parsers and transforms).
 * @param rows Parent rows, changed in place.
 * @param include What to load (already checked).
 * @param run Runs one include query in raw mode.
 * @returns The bytes of the related rows.
 */
export function loadIncludesWith<T extends object>(
  sql: Sql,
  rows: T[],
  include: IncludeMap,
  run: RawQueryRunner,
): Promise<number> {
  return loadLevel(rows as unknown as Row[], include, objectKind(sql, run));
}

/** A JSON row: PostgreSQL's `row_to_json` text, parsed lazily for its keys. */
interface JsonRow {
  text: string;
  parsed: Record<string, unknown> | undefined;
}

function parsedOf(row: JsonRow): Record<string, unknown> {
  return row.parsed ??= JSON.parse(row.text) as Record<string, unknown>;
}

function jsonKind(sql: Sql, run: RawQueryRunner): RowKind<JsonRow> {
  const decoder = new TextDecoder();
  return {
    async fetch(query) {
      const raw = await run(toJsonRows(sql, query));
      const rows = new Array<JsonRow>(raw.length);
      for (let i = 0; i < raw.length; i++) {
        rows[i] = { text: decoder.decode(raw[i]![0]!), parsed: undefined };
      }
      return { rows, bytes: sumBytes(raw) };
    },
    get: (row, column) => parsedOf(row)[column],
    has: (row, name) => Object.hasOwn(parsedOf(row), name),
    attach(row, name, value) {
      const json = value === null
        ? "null"
        : Array.isArray(value)
        ? "[" + value.map((r) => r.text).join(",") + "]"
        : value.text;
      // Splice before the closing brace so the row's own text stays exactly PostgreSQL's.
      const body = row.text.slice(0, -1);
      row.text = body + (body.length > 1 ? "," : "") + JSON.stringify(name) + ":" + json + "}";
    },
  };
}

/**
 * Attaches includes to a batch of JSON rows (one `row_to_json` text per raw row, as a source with
 * `output: "json"` returns them). Related rows are rendered by PostgreSQL too (`row_to_json` of
 * the include query's rows) and spliced into the parent's text as a property, so every value keeps
 * PostgreSQL's own JSON rendering. Keys are read by parsing the texts.
 *
 * @param sql The postgres.js instance the include queries are built with.
 * @param rows Raw JSON rows; each row's text is replaced by the text with its includes.
 * @param include What to load (already checked).
 * @param run Runs one include query in raw mode.
 * @returns The bytes of the related rows' JSON texts.
 */
export async function loadJsonIncludesWith(
  sql: Sql,
  rows: RawRow[],
  include: IncludeMap,
  run: RawQueryRunner,
): Promise<number> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const json: JsonRow[] = rows.map((r) => ({ text: decoder.decode(r[0]!), parsed: undefined }));
  const bytes = await loadLevel(json, include, jsonKind(sql, run));
  for (let i = 0; i < rows.length; i++) rows[i] = [encoder.encode(json[i]!.text)];
  return bytes;
}

/**
 * Wraps a source of JSON rows (`output: "json"`) so that each batch comes with its includes spliced
 * in, and with the related rows' bytes added to the batch's `bytes` (so the tuner shrinks the next
 * fetch after a batch heavy with related rows).
 *
 * @param sql The postgres.js instance the include queries are built with.
 * @param source An open source of JSON rows.
 * @param include What to load (already checked).
 * @returns The source, with includes.
 */
export function withJsonIncludes(
  sql: Sql,
  source: PostgresSource,
  include: IncludeMap,
): PostgresSource {
  const run = includeRunner(sql, source);
  const wrapped: PostgresSource = {
    columns: () => source.columns(),
    async fetch(n) {
      const batch = await source.fetch(n);
      if (batch.rows.length === 0) return batch;
      const related = await loadJsonIncludesWith(sql, batch.rows, include, run);
      return { rows: batch.rows, bytes: batch.bytes + related };
    },
    close: (error) => source.close(error),
  };
  if (source.interrupt) wrapped.interrupt = () => source.interrupt!();
  if (source.query) wrapped.query = (query) => source.query!(query);
  return wrapped;
}
