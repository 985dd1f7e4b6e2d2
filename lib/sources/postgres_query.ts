import type postgres from "postgres";

/**
 * A query built by postgres.js: ``sql`select …` `` (parameters allowed). It is not run by itself
 * (postgres.js queries are lazy); sluice runs it inside a cursor.
 */
export interface SqlQuery extends PromiseLike<unknown> {
  /** Asks the server to cancel the query while it runs. */
  cancel(): unknown;
}

/** SQL text with `$1 … $n` parameters (PGlite's `query` template tag returns this shape). */
export interface ParameterizedQuery {
  /** The SQL text. */
  query: string;
  /** The parameters' values. */
  params?: readonly unknown[];
}

/**
 * SQL text with `$1 … $n` parameters as a query builder compiles it: Kysely's `compile()` gives
 * `{ sql, parameters }`, Drizzle's `toSQL()` and `PgDialect#sqlToQuery()` give `{ sql, params }`.
 */
export type CompiledQuery =
  | { readonly sql: string; readonly parameters: readonly unknown[] }
  | { readonly sql: string; readonly params: readonly unknown[] };

/**
 * A query builder's query that sluice compiles with the builder's own compiler: a Drizzle query
 * (`db.select()…`, anything with `toSQL()`) or a Drizzle ``sql`…` `` template (rendered with
 * PostgreSQL quoting, column names as declared: with Drizzle's `casing` option, pass
 * `new PgDialect({ casing }).sqlToQuery(query)` instead).
 */
export type BuilderQuery =
  | { toSQL(): { sql: string; params: readonly unknown[] } }
  | {
    getSQL(): unknown;
    // deno-lint-ignore no-explicit-any
    toQuery(config: any): { sql: string; params: readonly unknown[] };
  };

/**
 * A query: a ``sql`…` `` query of the same driver instance (parameters allowed), a SQL string,
 * `{ query, params }`, a compiled query (Kysely's `compile()`, Drizzle's `toSQL()`), or a Drizzle
 * query or ``sql`…` `` template. Text forms use `$1 … $n` parameters.
 */
export type Query = SqlQuery | string | ParameterizedQuery | CompiledQuery | BuilderQuery;

/**
 * A query in one of the two forms a driver can run: a driver's own lazy query (a fragment it can
 * nest), or SQL text with its parameters.
 */
export type NormalQuery =
  | { fragment: SqlQuery; text?: undefined; params?: undefined }
  | { fragment?: undefined; text: string; params: readonly unknown[] };

// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type PgQuery = postgres.PendingQuery<any>;

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") {
    if (typeof (value as { compile?: unknown }).compile === "function") {
      return "a query builder (pass builder.compile())";
    }
    return "an object without query text";
  }
  return String(value);
}

function textQuery(text: string, params: unknown, form: string): NormalQuery {
  const trimmed = text.replace(/[\s;]+$/, "");
  if (trimmed.trim() === "") {
    throw new TypeError(`Cannot use query as SQL: current value is an empty string`);
  }
  if (params !== undefined && !Array.isArray(params)) {
    throw new TypeError(
      `Cannot use ${form} as query parameters: current value is ${describe(params)}`,
    );
  }
  return { text: trimmed, params: params === undefined ? [] : [...params] };
}

/**
 * Turns any accepted query into a driver's lazy query or SQL text with parameters. Builders are
 * compiled here, by their own compilers. A postgres.js `sql.unsafe(text, params)` query becomes
 * text: nested in another query, postgres.js would drop its parameters.
 *
 * @param query The caller's query.
 * @returns The query as a fragment or as text with parameters.
 * @throws {TypeError} When `query` is none of the accepted forms, or its text is empty.
 *
 * @example A Kysely compiled query
 * ```ts
 * import { normalizeQuery } from "./postgres_query.ts";
 * import assert from "node:assert/strict";
 *
 * const query = { sql: "select $1::int as n", parameters: [1], queryId: {} };
 * assert.deepEqual(normalizeQuery(query), { text: "select $1::int as n", params: [1] });
 * ```
 */
export function normalizeQuery(query: unknown): NormalQuery {
  if (typeof query === "string") return textQuery(query, undefined, "query");
  if (query === null || (typeof query !== "object" && typeof query !== "function")) {
    throw new TypeError(`Cannot use query as a SQL query: current value is ${describe(query)}`);
  }
  const q = query as Record<string, unknown>;
  // Drizzle's queries are thenable too: compile them before taking thenables as driver fragments.
  if (typeof q.toSQL === "function") {
    const compiled = (q.toSQL as () => { sql?: unknown; params?: unknown })();
    if (typeof compiled?.sql !== "string") {
      throw new TypeError(
        `Cannot use query.toSQL() as a compiled query: current value is ${describe(compiled)}`,
      );
    }
    return textQuery(compiled.sql, compiled.params, "query.toSQL().params");
  }
  if (typeof q.getSQL === "function" && typeof q.toQuery === "function") {
    const compiled = (q.toQuery as (config: unknown) => { sql: string; params: unknown })(
      DRIZZLE_PG_CONFIG,
    );
    return textQuery(compiled.sql, compiled.params, "the sql template's params");
  }
  if (typeof q.then === "function") {
    // postgres.js 3.4.9 keeps an `unsafe()` query's text as its only template string and its
    // parameters as `args`; a tagged template with one string has no arguments.
    const strings = q.strings, args = q.args;
    if (Array.isArray(strings) && strings.length === 1 && Array.isArray(args) && args.length > 0) {
      return textQuery(String(strings[0]), args, "query parameters");
    }
    return { fragment: query as SqlQuery };
  }
  if (typeof q.query === "string") return textQuery(q.query, q.params, "query.params");
  if (typeof q.sql === "string") {
    return "parameters" in q
      ? textQuery(q.sql, q.parameters, "query.parameters")
      : textQuery(q.sql, q.params, "query.params");
  }
  throw new TypeError(`Cannot use query as a SQL query: current value is ${describe(query)}`);
}

// What Drizzle's PgDialect hands `SQL#toQuery()` (drizzle-orm 0.45): PostgreSQL quoting, `$n`
// parameters, column names as declared (Drizzle's default casing).
const DRIZZLE_PG_CONFIG = {
  escapeName: (name: string): string => `"${name.replace(/"/g, '""')}"`,
  escapeParam: (index: number): string => `$${index + 1}`,
  escapeString: (value: string): string => `'${value.replace(/'/g, "''")}'`,
  casing: { getColumnCasing: (column: { name: string }): string => column.name },
};

/**
 * Turns any accepted query except a driver's own fragment into SQL text with parameters (for
 * drivers that run text only).
 *
 * @param query The caller's query.
 * @param driver The driver's name, for the message.
 * @returns Text without trailing semicolons, and parameters.
 * @throws {TypeError} On a fragment or anything not accepted.
 */
export function toTextQuery(
  query: unknown,
  driver: string,
): { text: string; params: unknown[] } {
  const normal = normalizeQuery(query);
  if (normal.fragment !== undefined) {
    throw new TypeError(
      `Cannot use query as a ${driver} query: current value is another driver's query; use SQL text, { query, params } or a compiled query`,
    );
  }
  return { text: normal.text, params: [...normal.params] };
}

/**
 * Embeds a query in SQL around it: `strings[0]`, the query, `strings[1]`, `values[0]`,
 * `strings[2]` … (`strings` has two more entries than `values`). Each value becomes a parameter;
 * a text query's own parameters come first, so its `$1 … $n` keep their meaning.
 *
 * @param sql The postgres.js instance (a pool, a reserved connection or a transaction) the
 *   result runs on.
 * @param strings The SQL around the query and between the values.
 * @param query The query.
 * @param values Parameters after the query.
 * @returns A lazy postgres.js query, which can also be wrapped again.
 */
export function wrapQuery(
  sql: unknown,
  strings: readonly string[],
  query: NormalQuery,
  values: readonly unknown[] = [],
): NormalQuery & { run: PgQuery } {
  const db = sql as PgSql;
  if (query.fragment !== undefined) {
    // A template built by hand: postgres.js renumbers the fragment's parameters around ours.
    const template = Object.assign([...strings], { raw: [...strings] });
    const run = db(
      template as unknown as TemplateStringsArray,
      // deno-lint-ignore no-explicit-any
      ...([query.fragment, ...values] as any[]),
    );
    return { fragment: run as unknown as SqlQuery, run };
  }
  // Line breaks keep a trailing `--` comment of the query from swallowing what follows.
  let text = `${strings[0]}\n${query.text}\n${strings[1]}`;
  for (let i = 0; i < values.length; i++) {
    text += `$${query.params.length + i + 1}${strings[i + 2]}`;
  }
  const params = [...query.params, ...values];
  return {
    text,
    params,
    get run(): PgQuery {
      // The extended protocol even without parameters (postgres.js would use the simple one): it
      // runs one statement only, so a text query cannot end the read-only transaction it runs in.
      // deno-lint-ignore no-explicit-any
      return db.unsafe(text, params as any[], { simple: false } as any);
    },
  };
}

/**
 * Builds the runnable postgres.js query for `query` on `sql` (a pool, a reserved connection or a
 * transaction).
 *
 * @param sql Where the query runs.
 * @param query The query.
 * @returns A lazy postgres.js query.
 */
export function runQuery(sql: unknown, query: NormalQuery): PgQuery {
  return wrapQuery(sql, ["", ""], query).run;
}

/**
 * Wraps a query so each row comes back as PostgreSQL's own JSON text of the row. `alias.*` (not a
 * bare `alias`) is what makes this immune to a user column that has the alias's name.
 *
 * @param sql The postgres.js instance.
 * @param query The user's query.
 * @returns The wrapped query.
 */
export function toJsonRows(sql: unknown, query: NormalQuery): NormalQuery {
  return wrapQuery(
    sql,
    ["select row_to_json(sluice_row.*)::text from (", ") as sluice_row"],
    query,
  );
}
