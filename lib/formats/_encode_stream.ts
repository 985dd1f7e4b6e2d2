import { checkStreamCall } from "../check_stream_call.ts";
import { createSourceStream } from "../_source_stream.ts";
import type { StreamOptions } from "../options.ts";
import { openSource } from "../sources/open_source.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import type { RawRow } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";
import { copySizing, endsAtFullChunk, withFormatDefaults } from "./format_options.ts";

/**
 * Writes a row's single value, `bytes[start, end)`, as the format's text for it (a JSON row: its
 * JSON text).
 */
export type ValueWriter = (
  writer: ChunkWriter,
  bytes: Uint8Array,
  start: number,
  end: number,
) => void;

/**
 * Writes the value as it is (as text: in a `oneLine` writer its raw CR/LF become spaces).
 *
 * @param writer Where to write.
 * @param bytes Holds the value.
 * @param start Where it starts.
 * @param end Where it ends.
 */
export function writeAsIs(
  writer: ChunkWriter,
  bytes: Uint8Array,
  start: number,
  end: number,
): void {
  writer.writeText(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
}

/** What a byte format writes for each row, after each batch and after the last one. */
export interface RowEncoder {
  /**
   * Writes one row, whose value is `bytes[start, end)`; `writeValue` writes it as the row's JSON
   * text (as it is from the server's `row_to_json`, or rendered from a line of COPY text).
   */
  writeRow(
    writer: ChunkWriter,
    bytes: Uint8Array,
    start: number,
    end: number,
    writeValue: ValueWriter,
  ): void;
  /** Writes what ends a batch (called after each batch's rows). */
  endBatch?(writer: ChunkWriter): void;
  /** Writes the closing bytes once the last batch was written (never after an error). */
  writeEnd?(writer: ChunkWriter): void;
}

/**
 * The shared body of the JSON byte formats (NDJSON, JSON array, SSE): applies the formats'
 * defaults, opens the source with `json` rows — through `COPY` when the query allows it — writes
 * each row with `encoder` as it arrives off the socket, and streams each batch in `writer`'s
 * ≤ 64 KiB chunks, keeping the engine's tuning and cleanup.
 */
export function streamEncoded(
  sql: Database,
  query: DatabaseQuery,
  userOptions: StreamOptions | undefined,
  encoder: RowEncoder,
  writer: ChunkWriter,
  what: string,
): ReadableStream<Uint8Array> {
  checkStreamCall(sql, query, userOptions, what);
  const options = withFormatDefaults(userOptions);
  const byChunk = endsAtFullChunk(userOptions);
  let viaCopy = false;
  // A cursor's rows are written as each arrives off the wire too (the driver's views of them die
  // young), unless a step after the fetch still needs them: includes are spliced into the rows,
  // and a keyset page may be fetched again after a connection failure.
  const direct = writeOnArrival(options);
  return createSourceStream<unknown, Uint8Array>(
    (signal) =>
      openSource<unknown>(sql, query, {
        ...options,
        signal,
        output: "json",
        ...(direct
          ? {
            mapRow: (raw: RawRow) => {
              const value = raw[0]!;
              encoder.writeRow(writer, value, 0, value.length, writeAsIs);
              return null;
            },
          }
          : {}),
        copyAs: options.copy === false ? undefined : {
          format: "json",
          sink: (encoding) => {
            if (encoding.format !== "json") throw new TypeError("a JSON COPY was asked for");
            viaCopy = true;
            const writeJson = encoding.writeJson;
            // A read ends once a chunk is full (see endsAtFullChunk).
            return (bytes, start, end) => {
              encoder.writeRow(writer, bytes, start, end, writeJson);
              return byChunk && writer.hasFullChunk;
            };
          },
        },
      }),
    options,
    (controller, rows) => {
      if (!direct) {
        for (let r = 0; r < rows.length; r++) {
          const value = (rows[r] as RawRow)[0]!;
          encoder.writeRow(writer, value, 0, value.length, writeAsIs);
        }
      }
      encoder.endBatch?.(writer);
      // A COPY batch ends at a full chunk: the few bytes after it wait for the next batch rather
      // than going out as a chunk of their own (not for SSE, whose batches are whole events).
      writer.flushTo(controller, viaCopy && byChunk && encoder.endBatch === undefined);
    },
    (controller) => {
      encoder.writeEnd?.(writer);
      writer.flushTo(controller);
    },
    () => viaCopy ? copySizing(userOptions) : undefined,
  );
}

/**
 * Whether a format can write a cursor's rows as they arrive (through the source's `mapRow`)
 * rather than once the batch is in: not with `include` (related rows are spliced in after the
 * fetch) nor keyset pages (a page can be fetched again after a connection failure).
 *
 * @param options The stream options.
 * @returns `true` when rows can be written on arrival.
 */
export function writeOnArrival(options: StreamOptions): boolean {
  return options.include === undefined && options.strategy !== "keyset" &&
    options.key === undefined;
}
