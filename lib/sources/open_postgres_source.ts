import type { StreamOptions } from "../options.ts";
import { openPostgresCursor } from "./postgres_cursor.ts";
import type { PostgresSource, Query, SourceOutput, Sql } from "./postgres_cursor.ts";

/** Options of {@linkcode openPostgresSource}: the stream options plus the row shape wanted. */
export interface PostgresSourceOptions extends StreamOptions {
  /** `"values"` (default) or `"json"` (one `row_to_json` text per row). */
  output?: SourceOutput;
}

/**
 * Opens the source every postgres.js stream reads from, choosing the strategy from the options
 * (a server-side cursor by default). Every public stream function goes through here, so a new
 * strategy or driver is added in one place.
 *
 * @param sql A postgres.js instance.
 * @param query The user's query.
 * @param options Stream options and the row shape.
 * @returns An open source of raw rows.
 */
export function openPostgresSource(
  sql: Sql,
  query: Query,
  options: PostgresSourceOptions = {},
): Promise<PostgresSource> {
  return openPostgresCursor(sql, query, {
    statementTimeoutMs: options.statementTimeoutMs,
    output: options.output ?? "values",
  });
}
