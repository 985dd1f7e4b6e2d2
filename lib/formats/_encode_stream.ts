import { createSourceStream } from "../_source_stream.ts";
import type { StreamOptions } from "../options.ts";
import { openSource } from "../sources/open_source.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import type { RawRow, SourceOutput } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";
import { copySizing } from "./format_options.ts";

/** Writes a row's single value as the format's text for it (a JSON row: its JSON text). */
export type ValueWriter = (writer: ChunkWriter, value: Uint8Array) => void;

/**
 * Writes the value as it is (as text: in a `oneLine` writer its raw CR/LF become spaces).
 *
 * @param writer Where to write.
 * @param value The bytes.
 */
export function writeAsIs(writer: ChunkWriter, value: Uint8Array): void {
  writer.writeText(value);
}

/** What a byte format writes for each row, after each batch and after the last one. */
export interface RowEncoder {
  /**
   * Writes one row; `writeValue` writes its value as the row's text (with `json` output: the row's
   * JSON text, which a source reading through COPY renders from COPY text).
   */
  writeRow(writer: ChunkWriter, value: Uint8Array, writeValue: ValueWriter): void;
  /** Writes what ends a batch (called after each batch's rows). */
  endBatch?(writer: ChunkWriter): void;
  /** Writes the closing bytes once the last batch was written (never after an error). */
  writeEnd?(writer: ChunkWriter): void;
}

/**
 * The shared body of the JSON byte formats: opens the source with `json` rows — through `COPY`
 * when the query allows it, each row then written by `encoder` as it arrives off the socket — and
 * streams each batch into `writer`'s ≤ 64 KiB chunks, keeping the engine's tuning and cleanup.
 * `options` already carry the format defaults; `userOptions` are the caller's own.
 */
export function streamEncoded(
  sql: Database,
  query: DatabaseQuery,
  options: StreamOptions,
  output: SourceOutput,
  encoder: RowEncoder,
  writer: ChunkWriter,
  userOptions: StreamOptions | undefined,
): ReadableStream<Uint8Array> {
  let viaCopy = false;
  // A cursor's rows are written as each arrives off the wire too (the driver's views of them die
  // young), unless a step after the fetch still needs them: includes are spliced into the rows,
  // and a keyset page may be fetched again after a connection failure.
  const direct = writeOnArrival(options);
  return createSourceStream<unknown, Uint8Array>(
    () =>
      openSource<unknown>(sql, query, {
        ...options,
        output,
        ...(direct
          ? {
            mapRow: (raw: RawRow) => {
              encoder.writeRow(writer, raw[0]!, writeAsIs);
              return null;
            },
          }
          : {}),
        copyAs: output === "json" && options.copy !== false
          ? {
            format: "json",
            sink: (encoding) => {
              if (encoding.format !== "json") throw new TypeError("a JSON COPY was asked for");
              viaCopy = true;
              const writeJson = encoding.writeJson;
              // The encoder hands the row's bytes back to writeValue; the range rides along here.
              let from = 0;
              let to = 0;
              const writeValue: ValueWriter = (w, value) => writeJson(w, value, from, to);
              return (bytes, start, end) => {
                from = start, to = end;
                encoder.writeRow(writer, bytes, writeValue);
              };
            },
          }
          : undefined,
      }),
    options,
    (controller, rows) => {
      if (!direct) {
        for (let r = 0; r < rows.length; r++) {
          encoder.writeRow(writer, (rows[r] as RawRow)[0]!, writeAsIs);
        }
      }
      encoder.endBatch?.(writer);
      writer.flushTo(controller);
    },
    encoder.writeEnd
      ? (controller) => {
        encoder.writeEnd!(writer);
        writer.flushTo(controller);
      }
      : undefined,
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
