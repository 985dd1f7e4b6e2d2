import type { ChunkWriter } from "./_chunk_writer.ts";
import type { RowEncoder, ValueWriter } from "./_encode_stream.ts";

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const LF = 0x0a;

/**
 * Writes rows as one JSON array, `[row,\nrow,\n…row]\n` (`[]\n` when there are none), each row
 * being PostgreSQL's `row_to_json` text, byte for byte.
 */
export class JsonArrayEncoder implements RowEncoder {
  #rows = 0;

  /**
   * Writes a row, opening the array before the first one.
   *
   * @param w Where to write.
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
    if (this.#rows++ === 0) w.writeByte(OPEN);
    else w.writeByte(COMMA), w.writeByte(LF);
    writeValue(w, bytes, start, end);
  }

  /**
   * Closes the array (opening it first if no row was written).
   *
   * @param w Where to write.
   */
  writeEnd(w: ChunkWriter): void {
    if (this.#rows === 0) w.writeByte(OPEN);
    w.writeByte(CLOSE);
    w.writeByte(LF);
  }
}
