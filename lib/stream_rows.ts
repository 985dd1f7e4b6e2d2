import { checkStreamCall } from "./check_stream_call.ts";
import { createSourceStream } from "./_source_stream.ts";
import type { StreamOptions } from "./options.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";
import type { Row } from "./sources/postgres_cursor.ts";
import { openDecodedCursor } from "./stream_batches.ts";

/**
 * Streams a query's rows one at a time, fetched in byte-tuned batches like
 * {@linkcode streamBatches}.
 *
 * A fetched batch is queued whole; the next fetch starts when the consumer has read it all. The
 * idle timeout counts a consumer that is still reading queued rows as active.
 *
 * @typeParam T The row type.
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options Batch sizing, abort signal, idle and statement timeouts, `onBatch`.
 * @returns A stream of rows; cancelling it closes the cursor and frees the connection.
 *
 * @example Stop at the first match
 * ```ts ignore
 * for await (const order of streamRows(sql, "select * from orders order by id")) {
 *   if (order.total > 1000) break; // the cursor is closed and the connection released
 * }
 * ```
 */
export function streamRows<T = Row>(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<T> {
  checkStreamCall(sql, query, options, "streamRows()");
  return createSourceStream<T, T>(
    (signal) => openDecodedCursor<T>(sql, query, { ...options, signal }),
    options,
    (controller, rows) => {
      for (let i = 0; i < rows.length; i++) controller.enqueue(rows[i]!);
    },
  );
}
