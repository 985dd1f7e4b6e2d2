import type { RawRow } from "../sources/postgres_cursor.ts";
import type { ChunkWriter } from "./_chunk_writer.ts";

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const LF = 0x0a;

/**
 * Writes rows as one JSON array, `[row,\nrow,\n…row]\n` (`[]\n` when there are none), each row
 * being PostgreSQL's `row_to_json` text, byte for byte.
 */
export class JsonArrayEncoder {
  #rows = 0;

  /**
   * Writes rows, opening the array before the first one.
   *
   * @param w Where to write.
   * @param rows Rows of one value each: the row's JSON text.
   */
  writeRows(w: ChunkWriter, rows: readonly RawRow[]): void {
    for (let r = 0; r < rows.length; r++) {
      if (this.#rows++ === 0) w.writeByte(OPEN);
      else w.writeByte(COMMA), w.writeByte(LF);
      w.write(rows[r]![0]!);
    }
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
