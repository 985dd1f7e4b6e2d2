import type postgres from "postgres";
import { SluiceError } from "../errors.ts";
import type { Column, Sql } from "../sources/postgres_cursor.ts";
import { runQuery, wrapQuery } from "../sources/postgres_query.ts";
import type { NormalQuery, Query } from "../sources/postgres_query.ts";
import { quoteName, tableQueryFragment } from "./table_query.ts";
import type { TableQuery } from "./table_query.ts";

// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type PgQuery = postgres.PendingQuery<any>;

/** The first PostgreSQL version with TID range scans (`ctid >= … and ctid < …` read only those pages). */
export const TID_RANGE_SCAN_VERSION = 140000;

// Key types whose ranges sluice can split: numbers, dates and timestamps.
const NUMERIC_TYPES = new Set([20, 21, 23, 26, 700, 701, 1700]);
const INTEGER_TYPES = new Set([20, 21, 23, 26]);
const TIME_TYPES = new Set([1082, 1114, 1184]);

/**
 * Splits `pages` heap pages into at most `parts` contiguous ranges of whole pages, as `[from, to)`
 * page numbers; the last range is open-ended (`to` undefined) so rows on pages added after the
 * size was read are not lost. Before PostgreSQL 14 a `ctid` range is no TID range scan — every part
 * would read the whole table — so the table is read as one part.
 *
 * @param pages The table's size in pages.
 * @param parts How many parts were asked for.
 * @param serverVersion `server_version_num`.
 * @returns The page ranges, in page order.
 *
 * @example Ten pages in three parts
 * ```ts
 * import { splitPages } from "./plan_parts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitPages(10, 3, 150000), [[0, 3], [3, 6], [6, undefined]]);
 * ```
 */
export function splitPages(
  pages: number,
  parts: number,
  serverVersion: number,
): [number, number | undefined][] {
  const n = serverVersion < TID_RANGE_SCAN_VERSION ? 1 : Math.max(1, Math.min(parts, pages));
  const out: [number, number | undefined][] = [];
  for (let i = 0; i < n; i++) {
    out.push([
      Math.floor((pages * i) / n),
      i === n - 1 ? undefined : Math.floor((pages * (i + 1)) / n),
    ]);
  }
  return out;
}

/**
 * Picks up to `parts - 1` inner bounds from a sorted list of sample values (a `pg_stats`
 * histogram, whose buckets each hold the same share of rows), dropping repeats.
 *
 * @param sorted Sample values in ascending order, as text.
 * @param parts How many parts were asked for.
 * @returns Ascending, distinct bounds; part `i` holds keys in `[bounds[i-1], bounds[i])`.
 *
 * @example A skewed histogram
 * ```ts
 * import { pickBounds } from "./plan_parts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(pickBounds(["1", "2", "3", "4", "1000"], 2), ["3"]);
 * ```
 */
export function pickBounds(sorted: readonly string[], parts: number): string[] {
  const out: string[] = [];
  const last = sorted.length - 1;
  if (last < 1) return out;
  for (let i = 1; i < parts; i++) {
    const value = sorted[Math.round((last * i) / parts)]!;
    if (out[out.length - 1] !== value && value !== sorted[0]) out.push(value);
  }
  return out;
}

function literal(text: string, type: string): string {
  return `'${text.replace(/'/g, "''")}'::${type}`;
}

/**
 * Turns inner bounds into one SQL condition per part on `column` (NULLs in the first part).
 *
 * @param column The key, as a quoted SQL expression.
 * @param bounds Ascending inner bounds, as text.
 * @param type The key's SQL type name.
 * @returns The conditions, in range order.
 */
export function rangeConditions(column: string, bounds: readonly string[], type: string): string[] {
  if (bounds.length === 0) return ["true"];
  const out = [`(${column} < ${literal(bounds[0]!, type)} or ${column} is null)`];
  for (let i = 1; i < bounds.length; i++) {
    out.push(
      `${column} >= ${literal(bounds[i - 1]!, type)} and ${column} < ${literal(bounds[i]!, type)}`,
    );
  }
  out.push(`${column} >= ${literal(bounds[bounds.length - 1]!, type)}`);
  return out;
}

/**
 * Plans the parts of a partitioned read on the leader's connection (inside its snapshot): a table
 * query without `partitionKey` becomes `ctid` page ranges, anything else key ranges.
 *
 * @param sql The postgres.js instance.
 * @param leader The leader's reserved connection, in its transaction.
 * @param query The user's query (normalised) or table query.
 * @param parts How many parts were asked for.
 * @param key The `partitionKey`, if any.
 * @returns One query per part, in range order (fewer than `parts` when the data is small).
 */
export async function planParts(
  sql: Sql,
  leader: unknown,
  query: NormalQuery | TableQuery,
  parts: number,
  key: string | undefined,
): Promise<Query[]> {
  const pg = leader as PgSql;
  const table = "table" in query && typeof query.table === "string"
    ? query as TableQuery
    : undefined;
  if (key === undefined) {
    if (!table) {
      throw new TypeError(
        `Cannot use partitions with a SQL query: current value is ${parts}, but only a { table } query is split without a partitionKey`,
      );
    }
    const [info] = await pg.unsafe(
      `select c.relkind, pg_relation_size(c.oid) / current_setting('block_size')::int as pages,
              current_setting('server_version_num')::int as version
       from pg_class c where c.oid = $1::regclass`,
      [quoteName(table.table)],
    );
    if (info!.relkind !== "r" && info!.relkind !== "m") {
      throw new SluiceError(
        "PARTITIONS_UNSUPPORTED",
        `Cannot split ${table.table} into ctid ranges: it is not a plain table or materialized view (relkind ${
          info!.relkind
        }); give a partitionKey`,
      );
    }
    return splitPages(Number(info!.pages), parts, info!.version).map(([from, to]) =>
      tableQueryFragment(sql, table, [
        ...(from > 0 ? [`ctid >= '(${from},0)'::tid`] : []),
        ...(to !== undefined ? [`ctid < '(${to},0)'::tid`] : []),
      ])
    );
  }
  const normal: NormalQuery = table
    ? { fragment: tableQueryFragment(sql, table) }
    : query as NormalQuery;
  const described = await runQuery(pg, normal).describe() as unknown as {
    columns: readonly (Column & { table?: number; number?: number })[] | null;
  };
  // Column names are matched as the server sends them (before a postgres.js transform).
  const column = described.columns?.find((c) => c.name === key) ??
    described.columns?.find((c) => c.name === key.toLowerCase());
  if (!column) {
    throw new SluiceError(
      "PARTITIONS_UNSUPPORTED",
      `Cannot split the query by ${key}: the result has no such column`,
    );
  }
  const numeric = NUMERIC_TYPES.has(column.type);
  if (!numeric && !TIME_TYPES.has(column.type)) {
    throw new SluiceError(
      "PARTITIONS_UNSUPPORTED",
      `Cannot split the query by ${key}: its type (oid ${column.type}) is not a number, date or timestamp`,
    );
  }
  const [{ type }] = await pg`select format_type(${column.type}::oid, null) as type` as unknown as [
    { type: string },
  ];
  const ref = `sluice_part.${quoteName(key)}`;
  let bounds: string[] = [];
  if (column.table && column.number) {
    // The column is a table's own: its histogram splits by rows, not by value, so skew is handled.
    const [stats] = await pg.unsafe(
      `select array(select b::text from unnest(s.histogram_bounds::text::${type}[]) b) as bounds
       from pg_stats s join pg_class c on c.relname = s.tablename
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = s.schemaname
       join pg_attribute a on a.attrelid = c.oid and a.attname = s.attname
       where c.oid = $1 and a.attnum = $2 and not s.inherited and s.histogram_bounds is not null`,
      [column.table, column.number],
    );
    if (stats) bounds = pickBounds(stats.bounds as string[], parts);
  }
  if (bounds.length === 0 && parts > 1) {
    const step = INTEGER_TYPES.has(column.type)
      ? `floor(lo::numeric + (hi::numeric - lo::numeric) * i / ${parts})`
      : numeric
      ? `lo::numeric + (hi::numeric - lo::numeric) * i / ${parts}`
      : column.type === 1082
      ? `lo + ((hi - lo) * i / ${parts})`
      : `lo + (hi - lo) * (i::float8 / ${parts})`;
    const [row] = await wrapQuery(pg, [
      `with b as (select min(${ref}) as lo, max(${ref}) as hi from (`,
      `) as sluice_part) select array(select (${step})::${type}::text from b, generate_series(1, ${
        parts - 1
      }::int) i where lo < hi order by i) as bounds`,
    ], normal).run;
    bounds = (row!.bounds as string[]).filter((b, i, all) => i === 0 || b !== all[i - 1]);
  }
  return rangeConditions(ref, bounds, type).map((condition) =>
    asQuery(wrapQuery(sql, ["select * from (", `) as sluice_part where ${condition}`], normal))
  );
}

// A normalised query as a query form the sources take again.
function asQuery(normal: NormalQuery): Query {
  return normal.fragment !== undefined
    ? normal.fragment
    : { query: normal.text, params: [...normal.params] };
}
