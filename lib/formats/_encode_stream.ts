import { createSourceStream } from "../_source_stream.ts";
import type { StreamOptions } from "../options.ts";
import { openSource } from "../sources/open_source.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import type { RawRow, SourceOutput } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";

/** What a byte format does with a batch, and (optionally) after the last one. */
export interface RowEncoder {
  /** Encodes a batch of raw rows into the writer. */
  writeRows(writer: ChunkWriter, rows: readonly RawRow[]): void;
  /** Writes the closing bytes once the last batch was written (never after an error). */
  writeEnd?(writer: ChunkWriter): void;
}

/**
 * The shared body of the byte-format functions: opens the source with the wanted row shape and
 * streams each batch through `encoder` into `writer`'s ≤ 64 KiB chunks, keeping the engine's
 * tuning and cleanup. `options` already carry the format defaults.
 */
export function streamEncoded(
  sql: Database,
  query: DatabaseQuery,
  options: StreamOptions,
  output: SourceOutput,
  encoder: RowEncoder,
  writer: ChunkWriter,
): ReadableStream<Uint8Array> {
  return createSourceStream<RawRow, Uint8Array>(
    () => openSource(sql, query, { ...options, output }),
    options,
    (controller, rows) => {
      encoder.writeRows(writer, rows);
      writer.flushTo(controller);
    },
    encoder.writeEnd
      ? (controller) => {
        encoder.writeEnd!(writer);
        writer.flushTo(controller);
      }
      : undefined,
  );
}
