import { createSourceStream } from "./_source_stream.ts";
import type { StreamOptions } from "./options.ts";
import type { BatchSource } from "./sources/batch_source.ts";
import { openPostgresSource } from "./sources/open_postgres_source.ts";
import { decodeRawRows } from "./sources/postgres_cursor.ts";
import type { Query, Row, Sql } from "./sources/postgres_cursor.ts";

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
 * @param sql A postgres.js instance; one connection is reserved while the stream is open.
 * @param query The query, as a `sql` fragment (with parameters) or a SQL string.
 * @param options Batch sizing, abort signal, idle and statement timeouts, `onBatch`.
 * @returns A stream of row batches, rows parsed as postgres.js parses them.
 * @throws {TypeError | RangeError} On bad options or a query that is neither a fragment nor a string.
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
  sql: Sql,
  query: Query,
  options?: StreamOptions,
): ReadableStream<T[]> {
  return createSourceStream<T, T[]>(
    () => openDecodedCursor<T>(sql, query, options),
    options,
    (controller, rows) => controller.enqueue(rows),
  );
}

/**
 * Opens a postgres.js cursor whose batches are decoded into row objects (bytes still counted on the
 * raw values).
 *
 * @param sql A postgres.js instance.
 * @param query The query.
 * @param options `statementTimeoutMs` is used.
 * @returns An open source of row objects.
 */
export async function openDecodedCursor<T>(
  sql: Sql,
  query: Query,
  options?: StreamOptions,
): Promise<BatchSource<T>> {
  const cursor = await openPostgresSource(sql, query, options);
  return {
    async fetch(rows) {
      const batch = await cursor.fetch(rows);
      return {
        rows: decodeRawRows<T>(sql, cursor.columns() ?? [], batch.rows),
        bytes: batch.bytes,
      };
    },
    close: cursor.close,
    interrupt: cursor.interrupt,
  };
}
