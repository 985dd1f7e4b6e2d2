import type { ChunkWriter } from "./_chunk_writer.ts";
import type { RowEncoder, ValueWriter } from "./_encode_stream.ts";

/**
 * Writes rows as NDJSON: each row's JSON text (PostgreSQL's `row_to_json`) followed by `\n`. A raw
 * CR or LF inside the text (whitespace from a `json` column) becomes a space so that every row
 * stays on one line (the writer must be in `oneLine` mode).
 */
export const ndjsonEncoder: RowEncoder = {
  writeRow(w: ChunkWriter, bytes: Uint8Array, start: number, end: number, write: ValueWriter) {
    write(w, bytes, start, end);
    w.newline();
  },
};
