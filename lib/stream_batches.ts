import { checkStreamCall } from "./check_stream_call.ts";
import { createSourceStream } from "./_source_stream.ts";
import { includeRunner, loadIncludesWith } from "./load_includes.ts";
import type { StreamOptions } from "./options.ts";
import type { BatchSource } from "./sources/batch_source.ts";
import { assertPostgresJs, createSourceRowDecoder, openSource } from "./sources/open_source.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";
import type { Row, Sql } from "./sources/postgres_cursor.ts";

/**
 * Streams a query's rows in batches whose size is tuned to `targetBatchBytes`.
 *
 * The query runs as a server-side cursor (`DECLARE … NO SCROLL CURSOR`) in a read-only transaction
 * on a connection reserved from `sql`'s pool; each read fetches the next batch (`FETCH n`) with `n`
 * chosen from the bytes per row seen so far. Nothing is fetched before the first read. Ending,
 * cancelling, aborting, going idle or failing all close the cursor, end the transaction and return
 * the connection to the pool.
 *
 * @typeParam T The row type.
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options Batch sizing, abort signal, idle and statement timeouts, `onBatch`.
 * @returns A stream of row batches, rows parsed as postgres.js parses them.
 * @throws {TypeError | RangeError} On bad options or a query in none of those forms.
 *
 * @example Export every order, 2 MiB at a time
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamBatches } from "@sluice/sluice";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * for await (const batch of streamBatches(sql, sql`select * from orders where total > ${100}`)) {
 *   await save(batch);
 * }
 * ```
 */
export function streamBatches<T = Row>(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<T[]> {
  checkStreamCall(sql, query, options, "streamBatches()");
  return createSourceStream<T, T[]>(
    (signal) => openDecodedCursor<T>(sql, query, { ...options, signal }),
    options,
    (controller, rows) => controller.enqueue(rows),
  );
}

/**
 * Opens a postgres.js cursor whose batches are decoded into row objects (bytes still counted on the
 * raw values).
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance.
 * @param query The query.
 * @param options `statementTimeoutMs` is used.
 * @returns An open source of row objects.
 */
export async function openDecodedCursor<T>(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): Promise<BatchSource<T>> {
  const include = options?.include;
  if (include !== undefined) assertPostgresJs(sql, "include");
  const cursor = await openSource<T & object>(sql, query, {
    ...options,
    include: undefined,
    mapRow: createSourceRowDecoder<T & object>(sql),
  });
  const run = include ? includeRunner(sql as Sql, cursor) : undefined;
  return {
    async fetch(rows) {
      const batch = await cursor.fetch(rows);
      const decoded = batch.rows;
      // Related rows count toward the batch's bytes, so a batch heavy with them shrinks the next.
      const related = run && decoded.length > 0
        ? await loadIncludesWith(sql as Sql, decoded, include!, run)
        : 0;
      // A merged source (partitions) says when it is done and how many rows it delivered.
      return { ...batch, rows: decoded, bytes: batch.bytes + related };
    },
    close: cursor.close,
    interrupt: cursor.interrupt,
  };
}
