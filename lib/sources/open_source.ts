import { isBunSql, openBunSqlCursor } from "./bun_sql.ts";
import type { BunSql } from "./bun_sql.ts";
import { openPostgresSource } from "./open_postgres_source.ts";
import type { PostgresSourceOptions } from "./open_postgres_source.ts";
import { isPGlite, openPGliteCursor } from "./pglite.ts";
import type { PGliteDatabase } from "./pglite.ts";
import { createRowDecoder } from "./postgres_cursor.ts";
import { openPartitionedSource } from "../partitions/open_partitioned_source.ts";
import { isTableQuery, tableQueryFragment } from "../partitions/table_query.ts";
import type { TableQuery } from "../partitions/table_query.ts";
import type { Column, PostgresSource, Query, RawRow, Row, Sql } from "./postgres_cursor.ts";

/**
 * A database sluice can stream from: a postgres.js instance (`postgres(url)`), a PGlite instance
 * (`new PGlite()`) or Bun's built-in client (`new SQL(url)` from `"bun"`, PostgreSQL adapter).
 * The driver is recognised by what the object can do; sluice imports none of them.
 */
export type Database = Sql | PGliteDatabase | BunSql;

/**
 * A query: a ``sql`…` `` query of the same postgres.js or Bun instance (parameters allowed), a SQL
 * string, `{ query, params }` (what PGlite's `query` template tag builds), Kysely's compiled query
 * (`builder.compile()`), a Drizzle query (`db.select()…`, its `toSQL()`, or a ``sql`…` ``
 * template), or, with postgres.js, a table by name: `{ table, columns?, where? }` (see
 * {@linkcode TableQuery}). Text forms use `$1 … $n` parameters; PGlite runs every form but a
 * driver's fragment and a table.
 */
export type DatabaseQuery = Query | TableQuery;

/**
 * Opens the source every stream function reads from, for whichever driver `db` is: postgres.js
 * goes to {@linkcode openPostgresSource} (cursor or keyset strategy), PGlite and Bun's client to
 * their own cursor sources. All return the server's text-format values as bytes.
 *
 * @param db A postgres.js, PGlite or Bun `SQL` instance.
 * @param query The query.
 * @param options Stream options and the row shape.
 * @returns An open source of raw rows.
 * @throws {TypeError} When `db` is none of the supported drivers, or an option does not apply to it.
 *
 * @example Read one batch from PGlite
 * ```ts ignore
 * import { PGlite } from "@electric-sql/pglite";
 * const source = await openSource(new PGlite(), { query: "select $1::int as n", params: [1] });
 * const batch = await source.fetch(100);
 * await source.close();
 * ```
 */
export function openSource<T = RawRow>(
  db: Database,
  query: DatabaseQuery,
  options: PostgresSourceOptions<T> = {},
): Promise<PostgresSource<T>> {
  if (options.include !== undefined) assertPostgresJs(db, "include");
  if (options.strategy === "keyset" || options.key !== undefined) assertPostgresJs(db, "key");
  if ((options.partitions ?? 1) > 1) assertPostgresJs(db, "partitions");
  if (isTableQuery(query)) assertPostgresJs(db, "a { table } query");
  const cursorOptions = {
    statementTimeoutMs: options.statementTimeoutMs,
    output: options.output ?? "values",
  };
  if (isPGlite(db)) {
    return mapSource(openPGliteCursor(db, query as Query, cursorOptions), options.mapRow);
  }
  if (isBunSql(db)) {
    return mapSource(openBunSqlCursor(db, query as Query, cursorOptions), options.mapRow);
  }
  checkDatabase(db);
  const sql = db as Sql;
  if ((options.partitions ?? 1) > 1) return openPartitionedSource<T>(sql, query, options);
  if (isTableQuery(query)) {
    return openPostgresSource<T>(sql, tableQueryFragment(sql, query), options);
  }
  return openPostgresSource<T>(sql, query, options);
}

/**
 * Throws unless `db` is a database sluice can stream from (recognised by what it can do).
 *
 * @param db What the caller passed as the database.
 * @throws {TypeError} When it is not a postgres.js, PGlite or Bun `SQL` instance.
 */
export function checkDatabase(db: unknown): void {
  if (isPGlite(db as Database) || isBunSql(db as Database)) return;
  if (typeof db !== "function" || typeof (db as Sql).reserve !== "function") {
    const value = db === null || typeof db !== "object"
      ? String(db)
      : Array.isArray(db)
      ? "an array"
      : `an object with ${
        Object.keys(db).length ? `keys ${Object.keys(db).slice(0, 5).join(", ")}` : "no keys"
      }`;
    throw new TypeError(
      `Cannot use sql as a postgres.js, PGlite or Bun SQL instance: current value is ${value} (pass postgres(url), new PGlite() or new SQL(url))`,
    );
  }
}

// Applies `mapRow` to each fetched raw row; bytes stay those of the raw values.
async function mapSource<T>(
  opening: Promise<PostgresSource>,
  mapRow: ((row: RawRow, columns: readonly Column[]) => T) | undefined,
): Promise<PostgresSource<T>> {
  const source = await opening;
  if (mapRow === undefined) return source as unknown as PostgresSource<T>;
  return {
    columns: source.columns,
    async fetch(rows) {
      const batch = await source.fetch(rows);
      const columns = source.columns() ?? [];
      const out = new Array<T>(batch.rows.length);
      for (let i = 0; i < out.length; i++) out[i] = mapRow(batch.rows[i]!, columns);
      return { rows: out, bytes: batch.bytes };
    },
    close: source.close,
    ...(source.interrupt ? { interrupt: source.interrupt } : {}),
  };
}

/**
 * Returns a function that decodes one raw row into the object `db`'s driver returns for the same
 * query (postgres.js's parsers and transforms; PGlite's parsers; for Bun, parsers mirroring Bun's
 * for the built-in types), for {@linkcode openSource}'s `mapRow`.
 *
 * @param db The instance the rows come from.
 * @returns A row decoder.
 */
export function createSourceRowDecoder<T = Row>(
  db: Database,
): (raw: RawRow, columns: readonly Column[]) => T {
  // Only postgres.js has transforms; the others' parsers already sit on their columns.
  return createRowDecoder<T>(isPGlite(db) || isBunSql(db) ? NO_TRANSFORMS : db);
}

const NO_TRANSFORMS = { options: {} } as unknown as Sql;

/**
 * Throws unless `db` is a postgres.js instance, for features only postgres.js streams have.
 *
 * @param db The instance.
 * @param feature The option's name, for the message.
 * @throws {TypeError} For PGlite and Bun's client.
 */
export function assertPostgresJs(db: Database, feature: string): asserts db is Sql {
  if (isPGlite(db) || isBunSql(db)) {
    throw new TypeError(
      `Cannot use ${feature} with ${
        isPGlite(db) ? "PGlite" : "Bun's SQL client"
      }: current value is set, but only postgres.js streams support it`,
    );
  }
}
