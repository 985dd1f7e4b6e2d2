import { ChunkWriter } from "./formats/_chunk_writer.ts";
import { ndjsonEncoder } from "./formats/ndjson.ts";
import type { StreamOptions } from "./options.ts";
import { streamEncoded } from "./formats/_encode_stream.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";

/**
 * Streams a query's rows as NDJSON (newline-delimited JSON): one line per row, in order, each line
 * being PostgreSQL's own `row_to_json` text of the row followed by `\n`.
 *
 * A query without parameters whose columns are all built-in scalars (numbers, booleans, text
 * types, dates and timestamps under an ISO `DateStyle`, json/jsonb, uuid, bytea, interval …) is
 * read through `COPY (query) TO STDOUT` and its text rendered as `row_to_json` would, byte for byte,
 * without being decoded — at `COPY`'s speed. Any other query (parameters, arrays, composites,
 * enums, ranges, a postgres.js column transform, `copy: false`) is wrapped as
 * `select row_to_json(r.*)::text from (query) r` and PostgreSQL renders the JSON. Either way the
 * one change is that a raw CR or LF inside a row's text — only possible as whitespace kept from a
 * `json` column — is written as a space, so a row never spans two lines. Output is coalesced into
 * chunks of up to 64 KiB. Batch sizing, timeouts and cleanup are those of `streamBatches`.
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options Batch sizing (`targetBatchBytes` defaults to 64 KiB; through a cursor
 *   `firstBatchRows`/`minBatchRows` to 10; through `COPY`, unless set, the first batch is one row
 *   and each later one a 64 KiB output chunk), abort signal, idle and statement timeouts,
 *   `onBatch`, `copy`.
 * @returns A byte stream of UTF-8 NDJSON; cancelling it closes the cursor and frees the connection.
 * @throws {TypeError | RangeError} On bad options or a query in none of those forms.
 *
 * @example Serve a query as NDJSON
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamNdjson } from "@sluice/sluice";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const body = streamNdjson(sql, sql`select * from orders where status = ${"paid"}`);
 * return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
 * ```
 */
export function streamNdjson(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<Uint8Array> {
  return streamEncoded(
    sql,
    query,
    options,
    ndjsonEncoder,
    new ChunkWriter(undefined, { oneLine: true }),
    "streamNdjson()",
  );
}
