import type { Column, RawRow } from "../sources/postgres_cursor.ts";
import { ChunkWriter } from "./_chunk_writer.ts";

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

// The typed-array method, not Node's Buffer#indexOf (postgres.js hands out Buffers), which Deno's
// Buffer polyfill (2.9) makes several times slower.
const indexOf = Uint8Array.prototype.indexOf;

// From this length on, four native scans (memchr) beat one JavaScript loop over the bytes.
const LONG_VALUE = 256;

// Bytes that force a CSV field into quotes (COPY's CopyAttributeOutCSV, default options).
const SPECIAL = new Uint8Array(256);
for (const b of [COMMA, QUOTE, LF, CR]) SPECIAL[b] = 1;

// Types whose text output is never empty and never holds a comma, quote, CR or LF, whatever the
// session settings: their values are copied without a scan.
const PLAIN_TYPES = new Set([
  16, // bool
  20, // int8
  21, // int2
  23, // int4
  26, // oid
  700, // float4
  701, // float8
  1700, // numeric
  2950, // uuid
]);

/** Options of {@linkcode encodeCsvValue}. */
export interface CsvValueOptions {
  /** The value is a row's only column (COPY then also quotes `\.`, the end-of-data marker). */
  onlyColumn?: boolean;
}

/**
 * Encodes one value as a CSV field exactly as `COPY … (FORMAT csv)` does with default options:
 * `NULL` is an empty field; a value that is empty, holds a comma, a double quote, CR or LF (or is
 * `\.` in a one-column row) is put in double quotes, with its double quotes doubled.
 *
 * @param value The value's text-format bytes as PostgreSQL sends them, or `null` for SQL NULL.
 * @param options Whether the value is its row's only column.
 * @returns The field's bytes.
 *
 * @example Quote what needs it
 * ```ts
 * import { encodeCsvValue } from "./csv.ts";
 * import assert from "node:assert/strict";
 *
 * const text = (s: string) => new TextDecoder().decode(encodeCsvValue(new TextEncoder().encode(s)));
 * assert.equal(text("plain"), "plain");
 * assert.equal(text('say "hi", then go'), '"say ""hi"", then go"');
 * assert.equal(text(""), '""');
 * assert.equal(new TextDecoder().decode(encodeCsvValue(null)), "");
 * ```
 */
export function encodeCsvValue(
  value: Uint8Array | null,
  options: CsvValueOptions = {},
): Uint8Array {
  if (value === null) return new Uint8Array(0);
  const writer = new ChunkWriter(2 * value.length + 2);
  writeField(writer, value, options.onlyColumn === true);
  return writer.take()[0] ?? new Uint8Array(0);
}

function isEndMarker(value: Uint8Array): boolean {
  return value.length === 2 && value[0] === BACKSLASH && value[1] === DOT;
}

function needsQuotes(value: Uint8Array, onlyColumn: boolean): boolean {
  const n = value.length;
  if (n === 0) return true;
  if (n >= LONG_VALUE) {
    return indexOf.call(value, COMMA) !== -1 || indexOf.call(value, QUOTE) !== -1 ||
      indexOf.call(value, LF) !== -1 || indexOf.call(value, CR) !== -1;
  }
  for (let i = 0; i < n; i++) if (SPECIAL[value[i]!] === 1) return true;
  return onlyColumn && isEndMarker(value);
}

function writeQuoted(w: ChunkWriter, value: Uint8Array): void {
  w.writeByte(QUOTE);
  let from = 0;
  for (let i = indexOf.call(value, QUOTE); i !== -1; i = indexOf.call(value, QUOTE, i + 1)) {
    w.write(value.subarray(from, i + 1));
    from = i; // the quote is written again: doubled
  }
  w.write(from === 0 ? value : value.subarray(from));
  w.writeByte(QUOTE);
}

function writeField(w: ChunkWriter, value: Uint8Array, onlyColumn: boolean): void {
  if (needsQuotes(value, onlyColumn)) writeQuoted(w, value);
  else w.write(value);
}

/**
 * Encodes rows as CSV lines the way `COPY (query) TO STDOUT (FORMAT csv)` prints them: fields
 * separated by commas, lines ended by `\n`, values quoted by {@linkcode encodeCsvValue}'s rule.
 */
export class CsvEncoder {
  readonly #columns: readonly Column[];
  readonly #plain: boolean[];
  readonly #onlyColumn: boolean;

  /**
   * Creates an encoder for rows of these columns.
   *
   * @param columns The columns, in order.
   */
  constructor(columns: readonly Column[]) {
    this.#columns = columns;
    this.#plain = columns.map((c) => PLAIN_TYPES.has(c.type));
    this.#onlyColumn = columns.length === 1;
  }

  /**
   * Writes the header line: the column names, quoted by the same rule as values.
   *
   * @param w Where to write.
   */
  writeHeader(w: ChunkWriter): void {
    const encoder = new TextEncoder();
    this.#columns.forEach((column, i) => {
      if (i > 0) w.writeByte(COMMA);
      writeField(w, encoder.encode(column.name), this.#onlyColumn);
    });
    w.writeByte(LF);
  }

  /**
   * Writes one line per row.
   *
   * @param w Where to write.
   * @param rows Raw rows (text-format bytes) of the encoder's columns.
   */
  writeRows(w: ChunkWriter, rows: readonly RawRow[]): void {
    for (let r = 0; r < rows.length; r++) this.writeRow(w, rows[r]!);
  }

  /**
   * Writes one row's line.
   *
   * @param w Where to write.
   * @param row A raw row (text-format bytes) of the encoder's columns.
   */
  writeRow(w: ChunkWriter, row: RawRow): void {
    const plain = this.#plain;
    const onlyColumn = this.#onlyColumn;
    const width = plain.length;
    for (let j = 0; j < width; j++) {
      if (j > 0) w.writeByte(COMMA);
      const value = row[j];
      if (value === null || value === undefined) continue;
      if (plain[j]) w.write(value);
      else writeField(w, value, onlyColumn);
    }
    w.writeByte(LF);
  }
}
