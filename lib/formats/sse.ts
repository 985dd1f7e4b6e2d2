import type { ChunkWriter } from "./_chunk_writer.ts";
import type { RowEncoder, ValueWriter } from "./_encode_stream.ts";

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
export class SseEncoder implements RowEncoder {
  #rows = 0;
  #inEvent = false;

  /**
   * Writes a row into the current batch's `rows` event, opening the event with the batch's first
   * row.
   *
   * @param w Where to write; must be in `oneLine` mode (row texts may hold raw line breaks).
   * @param bytes Holds the row's value at `[start, end)`.
   * @param start Where the value starts.
   * @param end Where it ends.
   * @param writeValue Writes the value as the row's JSON text.
   */
  writeRow(
    w: ChunkWriter,
    bytes: Uint8Array,
    start: number,
    end: number,
    writeValue: ValueWriter,
  ): void {
    if (this.#inEvent) {
      w.writeByte(COMMA);
      w.newline();
      w.write(DATA);
    } else {
      w.write(ROWS_EVENT);
      w.newline();
      w.write(DATA);
      w.writeByte(OPEN);
      this.#inEvent = true;
    }
    writeValue(w, bytes, start, end);
    this.#rows++;
  }

  /**
   * Closes the batch's `rows` event, if it has rows.
   *
   * @param w Where to write.
   */
  endBatch(w: ChunkWriter): void {
    if (!this.#inEvent) return;
    w.writeByte(CLOSE);
    w.newline();
    w.newline();
    this.#inEvent = false;
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
