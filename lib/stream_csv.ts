import { checkStreamCall } from "./check_stream_call.ts";
import { createSourceStream } from "./_source_stream.ts";
import { ChunkWriter } from "./formats/_chunk_writer.ts";
import { CsvEncoder } from "./formats/csv.ts";
import { copySizing, endsAtFullChunk, withFormatDefaults } from "./formats/format_options.ts";
import { writeOnArrival } from "./formats/_encode_stream.ts";
import type { StreamOptions } from "./options.ts";
import { openSource } from "./sources/open_source.ts";
import type { Database, DatabaseQuery } from "./sources/open_source.ts";
import type { Column, PostgresSource, RawRow } from "./sources/postgres_cursor.ts";

/** Options of {@linkcode streamCsv}. */
export interface CsvOptions extends StreamOptions {
  /** Start with a line of column names. Default `true`. */
  header?: boolean;
}

/**
 * Streams a query's rows as CSV, byte for byte what `COPY (query) TO STDOUT (FORMAT csv, HEADER)`
 * prints under the same session settings — and, unlike `COPY`, the query may have parameters.
 *
 * A query without parameters is read through `COPY (query) TO STDOUT (FORMAT csv)` itself, so the
 * rows are PostgreSQL's own CSV at `COPY`'s speed. A query with parameters (which `COPY` cannot
 * take), or `copy: false`, runs as a cursor, and the values — the server's own text output, from
 * the output functions `COPY` calls, under the connection's `DateStyle`, `TimeZone`,
 * `IntervalStyle`, `extra_float_digits` … — are written without being decoded, by `COPY`'s
 * rules: fields are separated by `,` and lines end with `\n`; `NULL` is an empty field; a value
 * that is empty, holds `,`, `"`, CR or LF (or is `\.` in a one-column result) is double-quoted
 * with its quotes doubled. The header holds the column names as postgres.js reports them (after
 * its `transform.column.from`, if one is set), quoted by the same rule. Output is coalesced into
 * chunks of up to 64 KiB. Batch sizing, timeouts and cleanup are those of `streamBatches`.
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open (with PGlite, its only connection: other queries on it wait).
 * @param query The query: a `sql` fragment, a SQL string, `{ query, params }`, a Kysely compiled
 *   query or a Drizzle query (see {@linkcode DatabaseQuery}); parameters allowed in every form.
 * @param options `header` (default `true`), batch sizing (`targetBatchBytes` defaults to 64 KiB;
 *   through a cursor `firstBatchRows`/`minBatchRows` to 10; through `COPY`, unless set, the first
 *   batch is one row and each later one a 64 KiB output chunk), abort signal, idle and statement
 *   timeouts, `onBatch`, `copy`.
 * @returns A byte stream of CSV in the connection's client encoding (UTF-8 with postgres.js);
 * cancelling it closes the cursor and frees the connection.
 * @throws {TypeError | RangeError} On bad options or a query in none of those forms.
 *
 * @example Download a report
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamCsv } from "@sluice/sluice";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const body = streamCsv(sql, sql`select * from orders where created_at >= ${since}`);
 * return new Response(body, { headers: { "content-type": "text/csv; charset=utf-8" } });
 * ```
 */
export function streamCsv(
  sql: Database,
  query: DatabaseQuery,
  options?: CsvOptions,
): ReadableStream<Uint8Array> {
  checkStreamCall(sql, query, options, "streamCsv()", ["header"]);
  if (options?.include !== undefined) {
    throw new TypeError(
      `Cannot use include with streamCsv(): CSV rows are flat; include attaches related rows to objects (streamRows, streamBatches) or JSON (streamNdjson, streamJsonArray, streamSse)`,
    );
  }
  const opts = withFormatDefaults(options);
  if (options?.header !== undefined && typeof options.header !== "boolean") {
    throw new TypeError(
      `Cannot use header as a CSV option: current value is ${String(options.header)}`,
    );
  }
  const header = options?.header ?? true;
  const byChunk = endsAtFullChunk(options);
  const writer = new ChunkWriter();
  let source: PostgresSource<unknown> | undefined;
  let encoder: CsvEncoder | undefined;
  let viaCopy = false;
  const start = (columns = source?.columns()): CsvEncoder => {
    const csv = new CsvEncoder(columns ?? []);
    if (header) csv.writeHeader(writer);
    return csv;
  };
  // Rows are written as they arrive off the wire (see writeOnArrival).
  const direct = writeOnArrival(opts);
  return createSourceStream<unknown, Uint8Array>(
    async (signal) =>
      source = await openSource<unknown>(sql, query, {
        ...opts,
        signal,
        output: "values",
        ...(direct
          ? {
            mapRow: (raw: RawRow, columns: readonly Column[]) => {
              encoder ??= start(columns);
              encoder.writeRow(writer, raw);
              return null;
            },
          }
          : {}),
        copyAs: opts.copy === false ? undefined : {
          format: "csv",
          // Through COPY each row is its CSV line, written as it arrives.
          sink: () => {
            viaCopy = true;
            return (bytes, from, to) => {
              encoder ??= start();
              writer.write(from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to));
              return byChunk && writer.hasFullChunk;
            };
          },
        },
      }),
    opts,
    (controller, rows) => {
      encoder ??= start();
      if (!direct) encoder.writeRows(writer, rows as RawRow[]);
      // A COPY batch ends at a full chunk: the few bytes after it wait for the next batch rather
      // than going out as a chunk of their own.
      writer.flushTo(controller, viaCopy && byChunk);
    },
    (controller) => {
      encoder ??= start();
      writer.flushTo(controller);
    },
    () => viaCopy ? copySizing(options) : undefined,
  );
}
