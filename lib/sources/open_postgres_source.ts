import { withJsonIncludes } from "../load_includes.ts";
import type { StreamOptions } from "../options.ts";
import { openPostgresCursor } from "./postgres_cursor.ts";
import { openPostgresKeyset, resolveKeysetOptions } from "./postgres_keyset.ts";
import type {
  Column,
  CopyRequest,
  PostgresSource,
  Query,
  RawRow,
  SourceOutput,
  Sql,
} from "./postgres_cursor.ts";

/** Options of {@linkcode openPostgresSource}: the stream options plus the row shape wanted. */
export interface PostgresSourceOptions<T = RawRow> extends StreamOptions {
  /** `"values"` (default) or `"json"` (one `row_to_json` text per row). */
  output?: SourceOutput;
  /** Maps each raw row as it arrives (see `PostgresCursorOptions.mapRow`). */
  mapRow?: (row: RawRow, columns: readonly Column[]) => T;
  /**
   * Read through `COPY` when the query allows it (see `PostgresCursorOptions.copy`); ignored with
   * keyset pages and `include`.
   */
  copyAs?: CopyRequest;
  /** Read in this exported snapshot (see `PostgresCursorOptions.snapshot`); cursor strategy only. */
  snapshot?: string;
}

/**
 * Opens the source every postgres.js stream reads from, choosing the strategy from the options:
 * a server-side cursor by default, keyset pages with `strategy: "keyset"` or a `key`. Every public stream function goes through here, so a new
 * strategy or driver is added in one place.
 *
 * @param sql A postgres.js instance.
 * @param query The user's query.
 * @param options Stream options and the row shape.
 * @returns An open source of raw rows.
 */
export async function openPostgresSource<T = RawRow>(
  sql: Sql,
  query: Query,
  options: PostgresSourceOptions<T> = {},
): Promise<PostgresSource<T>> {
  // `include` nests related rows into JSON rows here; object rows get theirs once decoded
  // (openDecodedCursor), and raw value rows (CSV) have nowhere to put them.
  if (options.include !== undefined && options.output !== "json") {
    throw new TypeError(
      `Cannot use include with ${
        options.output ?? "values"
      } output: current value is an include map, but only rows as objects or JSON can nest related rows`,
    );
  }
  const keyset = resolveKeysetOptions(options);
  const source = keyset
    ? await openPostgresKeyset<T>(sql, query, {
      ...keyset,
      statementTimeoutMs: options.statementTimeoutMs,
      output: options.output ?? "values",
      ...(options.mapRow ? { mapRow: options.mapRow } : {}),
    })
    : await openPostgresCursor<T>(sql, query, {
      statementTimeoutMs: options.statementTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      output: options.output ?? "values",
      ...(options.mapRow ? { mapRow: options.mapRow } : {}),
      ...(options.copyAs && !options.include ? { copy: options.copyAs } : {}),
      ...(options.snapshot !== undefined ? { snapshot: options.snapshot } : {}),
    });
  return options.include
    ? withJsonIncludes(sql, source as PostgresSource, options.include) as PostgresSource<T>
    : source;
}
