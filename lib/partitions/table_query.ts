import type postgres from "postgres";
import type { Sql, SqlQuery } from "../sources/postgres_cursor.ts";

/**
 * A query over one table, by name: ``{ table: "orders", columns: ["id", "total"], where: sql`…` }``
 * reads `select id, total from orders where …`. Unlike a SQL query, it can be split into `ctid`
 * page ranges (`partitions`). postgres.js only.
 */
export interface TableQuery {
  /** The table (or view, without `partitions`), optionally schema-qualified: `"sales.orders"`. */
  table: string;
  /** The columns to read, as SQL names. Default: all (`*`). */
  columns?: readonly string[];
  /** A ``sql`…` `` condition (parameters allowed) the rows must meet. */
  where?: SqlQuery;
}

// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type PgQuery = postgres.PendingQuery<any>;

/**
 * Whether a query argument is a {@linkcode TableQuery}.
 *
 * @param query The query argument.
 * @returns `true` for a plain object with a `table` string.
 */
export function isTableQuery(query: unknown): query is TableQuery {
  return query !== null && typeof query === "object" &&
    typeof (query as TableQuery).table === "string" &&
    typeof (query as PromiseLike<unknown>).then !== "function";
}

/**
 * Quotes a possibly schema-qualified name as SQL identifiers (`a.b` → `"a"."b"`).
 *
 * @param name The name.
 * @returns The quoted name.
 */
export function quoteName(name: string): string {
  return name.split(".").map((part) => `"${part.replace(/"/g, '""')}"`).join(".");
}

/**
 * Checks a table query's fields.
 *
 * @param query The table query.
 * @throws {TypeError} On an empty table name, bad columns or a `where` that is not a fragment.
 */
export function checkTableQuery(query: TableQuery): void {
  if (query.table.trim() === "") {
    throw new TypeError(`Cannot use table as a table name: current value is an empty string`);
  }
  const { columns, where } = query;
  if (
    columns !== undefined &&
    (!Array.isArray(columns) || columns.length === 0 ||
      columns.some((c) => typeof c !== "string" || c === ""))
  ) {
    throw new TypeError(
      `Cannot use columns as the columns of a table query: current value is ${String(columns)}`,
    );
  }
  if (where !== undefined && (where === null || typeof where.then !== "function")) {
    throw new TypeError(
      `Cannot use where as a sql fragment: current value is ${String(where)}`,
    );
  }
}

/**
 * Builds the `select` a table query stands for, with extra SQL conditions ANDed to its `where`.
 *
 * @param sql The postgres.js instance.
 * @param query The table query.
 * @param conditions More conditions, as SQL text without parameters (a part's range).
 * @returns The query as a fragment.
 */
export function tableQueryFragment(
  sql: Sql,
  query: TableQuery,
  conditions: readonly string[] = [],
): SqlQuery {
  checkTableQuery(query);
  const pg = sql as unknown as PgSql;
  const list = query.columns ? query.columns.map(quoteName).join(", ") : "*";
  const head = `select ${list} from ${quoteName(query.table)}`;
  const extra = conditions.join(" and ");
  if (query.where === undefined) {
    return sql.unsafe(extra === "" ? head : `${head} where ${extra}`);
  }
  return extra === ""
    ? pg`${pg.unsafe(head)} where ${query.where as PgQuery}`
    : pg`${pg.unsafe(head)} where (${query.where as PgQuery}) and ${pg.unsafe(extra)}`;
}
