import type { RawRow } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";

/**
 * Writes rows as NDJSON: each row's JSON text (PostgreSQL's `row_to_json`, as one raw value)
 * followed by `\n`. A raw CR or LF inside the text (whitespace from a `json` column) becomes a space
 * so that every row stays on one line.
 *
 * @param w Where to write; must be in `oneLine` mode.
 * @param rows Rows of one value each: the row's JSON text.
 */
export function writeNdjsonRows(w: ChunkWriter, rows: readonly RawRow[]): void {
  for (let r = 0; r < rows.length; r++) {
    w.write(rows[r]![0]!);
    w.newline();
  }
}
