import { checkStreamCall } from "../check_stream_call.ts";
import { createSourceStream } from "../_source_stream.ts";
import { writeOnArrival } from "../formats/_encode_stream.ts";
import { withFormatDefaults } from "../formats/format_options.ts";
import type { StreamOptions } from "../options.ts";
import { openSource } from "../sources/open_source.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import type { Column, PostgresSource, RawRow } from "../sources/postgres_cursor.ts";
import { ArrowEncoder } from "./_encoder.ts";

/**
 * Default `targetBatchBytes` of {@linkcode streamArrow}: 1 MiB of Arrow buffers per record batch.
 * Larger than the text formats' 64 KiB because a record batch is the unit Arrow readers work on
 * (each carries its own metadata, and readers keep one chunk per batch); still small enough that
 * a batch in flight costs little memory.
 */
export const DEFAULT_ARROW_TARGET_BATCH_BYTES: number = 1024 * 1024;

/** The media type of the Arrow IPC stream format. */
export const ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream";

/**
 * Streams a query's rows in the Arrow IPC stream format: the schema, then one record batch per
 * fetched batch, then the end-of-stream marker — ready for `pyarrow.ipc.open_stream`,
 * `polars.read_ipc_stream`, DuckDB's `arrow` extension or any Arrow library.
 *
 * Each column's type follows from its PostgreSQL type:
 *
 * | PostgreSQL | Arrow |
 * |---|---|
 * | `int2`, `int4`, `int8` | `Int16`, `Int32`, `Int64` |
 * | `float4`, `float8` | `Float32`, `Float64` (`NaN`, `±Infinity` as the same IEEE values) |
 * | `numeric` | `Utf8` of PostgreSQL's text (exact; see below) |
 * | `bool` | `Bool` |
 * | `text`, `varchar`, `char(n)`, `"char"`, `name`, enums | `Utf8` |
 * | `bytea` | `Binary` |
 * | `uuid` | `Utf8` (`8-4-4-4-12` text) |
 * | `date` | `Date32` (days) |
 * | `timestamp` | `Timestamp(µs)` |
 * | `timestamptz` | `Timestamp(µs, "UTC")` |
 * | `time` | `Time64(µs)` |
 * | `interval` | `Interval(MonthDayNano)` |
 * | `json`, `jsonb` | `Utf8`, field metadata `sluice:format` = `json` |
 * | one-dimensional arrays of the above | `List` of the element type |
 * | anything else | `Utf8` of PostgreSQL's text output |
 *
 * NULLs are validity bits. Each field's metadata `sluice:pg_type` holds the PostgreSQL type oid.
 * `±infinity` dates and timestamps become the type's largest and (negated) smallest value, as
 * DuckDB encodes its own infinities. A value the Arrow type cannot hold exactly — an interval
 * beyond ±292 years of nanoseconds, a multidimensional array, a date in a `DateStyle` other than
 * ISO — fails the stream with `SluiceError("BAD_INPUT")`: a wrong value is never written.
 * `numeric` is text because its declared precision and scale (the typmod) are not reported by
 * postgres.js, and an undeclared `numeric` has no fixed scale (nor a place for `NaN`); cast to
 * `float8` or `bigint` in the query for a numeric column.
 *
 * A query without parameters is read through `COPY (query) TO STDOUT (FORMAT text)`; one with
 * parameters, or `copy: false`, through a cursor. Both read the same text values. Batch sizing,
 * timeouts and cleanup are those of `streamBatches`; a batch closes at `targetBatchBytes` of Arrow
 * buffers (default 1 MiB), and the first is a single row so the first byte leaves early.
 *
 * @param sql A postgres.js, PGlite or Bun `SQL` instance; one connection is reserved while the
 *   stream is open.
 * @param query The query, as a `sql` fragment (with parameters) or a SQL string.
 * @param options Batch sizing, abort signal, idle and statement timeouts, `onBatch`, `copy`.
 * @returns A byte stream in the Arrow IPC stream format; cancelling it closes the cursor and
 *   frees the connection. A failure errors the stream (no end-of-stream marker is sent).
 * @throws {TypeError | RangeError} On bad options or a query that is neither a fragment nor a string.
 *
 * @example Serve a table as Arrow
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamArrow } from "@sluice/sluice/arrow";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const body = streamArrow(sql, sql`select * from orders where created_at >= ${since}`);
 * return new Response(body, { headers: { "content-type": "application/vnd.apache.arrow.stream" } });
 * ```
 */
export function streamArrow(
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions,
): ReadableStream<Uint8Array> {
  checkStreamCall(sql, query, options, "streamArrow()");
  if (options?.include !== undefined) {
    throw new TypeError(
      `Cannot use include with streamArrow(): Arrow columns are flat; include attaches related rows to objects or JSON`,
    );
  }
  const opts = withFormatDefaults({
    ...options,
    targetBatchBytes: options?.targetBatchBytes ?? DEFAULT_ARROW_TARGET_BATCH_BYTES,
  });
  const target = opts.targetBatchBytes;
  // A value Arrow cannot hold fails the stream. Rows are encoded inside the driver's callbacks,
  // where a throw would not reach the stream: the error is kept and thrown at the batch's end.
  let failure: { error: unknown } | undefined;
  let source: PostgresSource<unknown> | undefined;
  let encoder: ArrowEncoder | undefined;
  let viaCopy = false;
  const start = (columns = source?.columns()): ArrowEncoder =>
    encoder = new ArrowEncoder(columns ?? []);
  // A cursor's rows are encoded as they arrive off the wire (see writeOnArrival).
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
              if (failure) return null;
              try {
                (encoder ?? start(columns)).addRow(raw);
              } catch (error) {
                failure = { error };
              }
              return null;
            },
          }
          : {}),
        copyAs: opts.copy === false ? undefined : {
          format: "text",
          sink: () => {
            viaCopy = true;
            // A read ends once the batch holds `target` bytes of Arrow buffers.
            return (bytes, from, to) => {
              if (failure) return true;
              const e = encoder ?? start();
              try {
                e.addLine(bytes, from, to);
              } catch (error) {
                failure = { error };
                return true;
              }
              // Summing the builders' sizes every 64 rows is close enough for a byte target.
              return (e.rows & 63) === 0 && e.byteLength >= target;
            };
          },
        },
      }),
    opts,
    (controller, rows) => {
      if (failure) throw failure.error;
      const e = encoder ?? start();
      if (!direct) { for (let r = 0; r < rows.length; r++) e.addRow(rows[r] as RawRow); }
      const bytes = e.flush();
      if (bytes !== undefined) controller.enqueue(bytes);
    },
    (controller) => {
      if (failure) throw failure.error;
      controller.enqueue((encoder ?? start()).end());
    },
    // Through COPY a read costs no round trip: the first batch is one row (an early first byte)
    // and batches end at `target` (the tuner's cap is set above it so that rule comes first).
    () =>
      viaCopy
        ? {
          firstBatchRows: options?.firstBatchRows ?? 1,
          minBatchRows: options?.minBatchRows ?? 1,
          targetBatchBytes: 2 * target,
        }
        : undefined,
  );
}
