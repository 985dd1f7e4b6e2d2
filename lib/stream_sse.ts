import { ChunkWriter } from "./formats/_chunk_writer.ts";
import { SseEncoder } from "./formats/sse.ts";
import type { StreamOptions } from "./options.ts";
import { streamEncoded } from "./formats/_encode_stream.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";

/**
 * Streams a query's rows as Server-Sent Events (`text/event-stream`): one `rows` event per fetched
 * batch, whose data is a JSON array of the batch's rows, then one `end` event whose data is
 * `{"rows":N}` with the total row count.
 *
 * Each row is PostgreSQL's own `row_to_json` text, on its own `data:` line; a browser's
 * `EventSource` joins the lines of an event with `\n`, so `JSON.parse(event.data)` gives the
 * batch's array. A raw CR or LF inside a row's text (whitespace kept from a `json` column) is
 * written as a space. A stream that fails never sends `end`: a client that got no `end` event did
 * not get every row.
 *
 * ```text
 * event: rows
 * data: [{"id":1,"status":"paid"},
 * data: {"id":2,"status":"open"}]
 *
 * event: end
 * data: {"rows":2}
 *
 * ```
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options Batch sizing (which sets the rows per event; `targetBatchBytes` defaults to
 *   64 KiB; through a cursor `firstBatchRows`/`minBatchRows` to 10; through `COPY`, unless set,
 *   the first event is one row and each later one about a 64 KiB chunk), abort signal, idle and
 *   statement timeouts, `onBatch`, `copy` (rows rendered as for `streamNdjson`, through `COPY` when
 *   possible; `false` for queries that produce rows slowly, so each event goes out at once).
 * @returns A byte stream of UTF-8 `text/event-stream`; cancelling it closes the cursor and frees
 * the connection.
 * @throws {TypeError | RangeError} On bad options or a query in none of those forms.
 *
 * @example Read the events in a browser
 * ```ts ignore
 * const source = new EventSource("/orders.sse");
 * source.addEventListener("rows", (e) => render(JSON.parse(e.data)));
 * source.addEventListener("end", (e) => {
 *   console.log(JSON.parse(e.data).rows, "rows");
 *   source.close();
 * });
 * ```
 */
export function streamSse(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<Uint8Array> {
  const writer = new ChunkWriter(undefined, { oneLine: true });
  return streamEncoded(sql, query, options, new SseEncoder(), writer, "streamSse()");
}
