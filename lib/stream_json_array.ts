import { ChunkWriter } from "./formats/_chunk_writer.ts";
import { JsonArrayEncoder } from "./formats/json_array.ts";
import type { StreamOptions } from "./options.ts";
import { streamEncoded } from "./formats/_encode_stream.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";

/**
 * Streams a query's rows as one JSON array: `[row,\nrow,\n…]\n` (`[]\n` for no rows), each row
 * being PostgreSQL's own `row_to_json` text of the row, byte for byte.
 *
 * The document is only complete when the stream ends normally: if the query fails, is aborted or
 * times out, the stream errors instead of closing, so a truncated array is never mistaken for a
 * whole one. Output is coalesced into chunks of up to 64 KiB. Fetching, batch sizing, timeouts
 * and cleanup are those of `streamBatches`.
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options Batch sizing (`targetBatchBytes` defaults to 64 KiB; through a cursor
 *   `firstBatchRows`/`minBatchRows` to 10; through `COPY`, unless set, the first batch is one row
 *   and each later one a 64 KiB output chunk), abort signal, idle and statement timeouts,
 *   `onBatch`, `copy` (the rows are rendered as for `streamNdjson`, through `COPY` when possible).
 * @returns A byte stream of one UTF-8 JSON document; cancelling it closes the cursor and frees the
 * connection.
 * @throws {TypeError | RangeError} On bad options or a query in none of those forms.
 *
 * @example Serve a query as a JSON array
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamJsonArray } from "@sluice/sluice";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const body = streamJsonArray(sql, sql`select id, total from orders where day = ${day}`);
 * return new Response(body, { headers: { "content-type": "application/json" } });
 * ```
 */
export function streamJsonArray(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<Uint8Array> {
  return streamEncoded(
    sql,
    query,
    options,
    new JsonArrayEncoder(),
    new ChunkWriter(),
    "streamJsonArray()",
  );
}
