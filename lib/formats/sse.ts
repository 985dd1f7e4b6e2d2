import type { RawRow } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";

const encoder = new TextEncoder();
const ROWS_EVENT = encoder.encode("event: rows");
const DATA = encoder.encode("data: ");
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;

/**
 * Writes rows as `text/event-stream` events: one `rows` event per batch whose data is a JSON array
 * of the batch's rows (one row per `data:` line, which the client joins with `\n` into one JSON
 * text), then one `end` event whose data is `{"rows":N}`.
 *
 * ```text
 * event: rows
 * data: [{"id":1},
 * data: {"id":2}]
 *
 * event: end
 * data: {"rows":2}
 *
 * ```
 */
export class SseEncoder {
  #rows = 0;

  /**
   * Writes one `rows` event holding these rows.
   *
   * @param w Where to write; must be in `oneLine` mode (row texts may hold raw line breaks).
   * @param rows Rows of one value each: the row's JSON text (at least one row).
   */
  writeRows(w: ChunkWriter, rows: readonly RawRow[]): void {
    w.write(ROWS_EVENT);
    w.newline();
    w.write(DATA);
    w.writeByte(OPEN);
    for (let r = 0; r < rows.length; r++) {
      if (r > 0) {
        w.writeByte(COMMA);
        w.newline();
        w.write(DATA);
      }
      w.write(rows[r]![0]!);
    }
    w.writeByte(CLOSE);
    w.newline();
    w.newline();
    this.#rows += rows.length;
  }

  /**
   * Writes the `end` event with the number of rows sent.
   *
   * @param w Where to write.
   */
  writeEnd(w: ChunkWriter): void {
    w.write(encoder.encode("event: end"));
    w.newline();
    w.write(encoder.encode(`data: {"rows":${this.#rows}}`));
    w.newline();
    w.newline();
  }
}
