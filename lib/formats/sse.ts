import type { RawRow } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";
import { writeJsonLine } from "./_json_text.ts";

const encoder = new TextEncoder();
const ROWS_EVENT = encoder.encode("event: rows\ndata: [");
const ROW_SEPARATOR = encoder.encode(",\ndata: ");
const EVENT_END = encoder.encode("]\n\n");

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
   * @param w Where to write.
   * @param rows Rows of one value each: the row's JSON text (at least one row).
   */
  writeRows(w: ChunkWriter, rows: readonly RawRow[]): void {
    w.write(ROWS_EVENT);
    for (let r = 0; r < rows.length; r++) {
      if (r > 0) w.write(ROW_SEPARATOR);
      writeJsonLine(w, rows[r]![0]!);
    }
    w.write(EVENT_END);
    this.#rows += rows.length;
  }

  /**
   * Writes the `end` event with the number of rows sent.
   *
   * @param w Where to write.
   */
  writeEnd(w: ChunkWriter): void {
    w.write(encoder.encode(`event: end\ndata: {"rows":${this.#rows}}\n\n`));
  }
}
