import { Batch, Column as ArrowColumn, Table, tableToIPC } from "@uwdata/flechette";
import type { Field, Schema } from "@uwdata/flechette";
import type { Column, RawRow } from "../sources/postgres_cursor.ts";
import { createColumn } from "./_columns.ts";
import type { ColumnBuilder, ColumnData } from "./_columns.ts";

const TAB = 0x09;
const indexOf = Uint8Array.prototype.indexOf;
const BACKSLASH = 0x5c;
// The IPC stream's end-of-stream marker: a continuation token and a zero length.
const END_OF_STREAM = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/**
 * Collects rows into Arrow columns and encodes them as the messages of an Arrow IPC stream: the
 * schema before the first record batch, a record batch per `flush()`, the end-of-stream marker
 * from `end()`. Rows come either as raw cursor rows (one text value per column) or as lines of
 * `COPY … (FORMAT text)`.
 */
export class ArrowEncoder {
  readonly #fields: Field[] = [];
  readonly #builders: ColumnBuilder[] = [];
  // Each builder's add, bound: calling through an array of functions keeps the call site cheap
  // where a method call on builders of a dozen classes would be megamorphic.
  readonly #adds: ((bytes: Uint8Array, start: number, end: number) => void)[] = [];
  readonly #schema: Schema;
  #rows = 0;
  #schemaSent = false;
  #scratch = new Uint8Array(1024);

  constructor(columns: readonly Column[]) {
    for (const column of columns) {
      const { field, builder } = createColumn(column);
      this.#fields.push(field);
      this.#builders.push(builder);
      this.#adds.push(builder.add.bind(builder));
    }
    this.#schema = { version: 4, endianness: 0, fields: this.#fields, metadata: null };
  }

  /** Rows collected since the last `flush()`. */
  get rows(): number {
    return this.#rows;
  }

  /** Bytes the collected rows take in Arrow buffers. */
  get byteLength(): number {
    let n = 0;
    for (const b of this.#builders) n += b.byteLength;
    return n;
  }

  /** Adds a cursor row: each value PostgreSQL's text output, `null` for NULL. */
  addRow(row: RawRow): void {
    const builders = this.#builders;
    for (let i = 0; i < builders.length; i++) {
      const value = row[i];
      if (value === null || value === undefined) builders[i]!.addNull();
      else this.#adds[i]!(value, 0, value.length);
    }
    this.#rows++;
  }

  /**
   * Adds a line of COPY text format, `bytes[start, end)` without its line feed: values separated
   * by tabs, `\N` for NULL, backslash escapes for tab, line feed, backslash …
   */
  addLine(bytes: Uint8Array, start: number, end: number): void {
    const builders = this.#builders;
    const adds = this.#adds;
    // One native scan per line finds a backslash; most lines have none.
    let escape = indexOf.call(bytes, BACKSLASH, start);
    if (escape >= end) escape = -1;
    let p = start;
    for (let i = 0; i < builders.length; i++) {
      let q = p;
      while (q < end && bytes[q] !== TAB) q++;
      const builder = builders[i]!;
      if (escape === -1 || escape >= q) adds[i]!(bytes, p, q);
      else {
        if (q - p === 2 && bytes[p + 1] === 0x4e) builder.addNull();
        else builder.add(this.#scratch, 0, this.#unescape(bytes, p, q));
        escape = q < end ? indexOf.call(bytes, BACKSLASH, q) : -1;
        if (escape >= end) escape = -1;
      }
      p = q + 1;
    }
    this.#rows++;
  }

  // Decodes COPY text escapes of `bytes[start, end)` into the scratch buffer; returns its length.
  #unescape(bytes: Uint8Array, start: number, end: number): number {
    if (this.#scratch.length < end - start) this.#scratch = new Uint8Array(2 * (end - start));
    const out = this.#scratch;
    let n = 0;
    for (let p = start; p < end; p++) {
      let c = bytes[p]!;
      if (c === BACKSLASH && p + 1 < end) {
        c = bytes[++p]!;
        if (c >= 0x30 && c <= 0x37) {
          let v = c - 0x30;
          for (
            let k = 0;
            k < 2 && p + 1 < end && bytes[p + 1]! >= 0x30 && bytes[p + 1]! <= 0x37;
            k++
          ) {
            v = v * 8 + bytes[++p]! - 0x30;
          }
          c = v & 0xff;
        } else if (c === 0x78 && p + 1 < end && isHex(bytes[p + 1]!)) {
          let v = hex(bytes[++p]!);
          if (p + 1 < end && isHex(bytes[p + 1]!)) v = v * 16 + hex(bytes[++p]!);
          c = v;
        } else c = ESCAPES[c] ?? c;
      }
      out[n++] = c;
    }
    return n;
  }

  /**
   * Encodes the rows collected since the last call as one record batch (preceded by the schema on
   * the first call). Returns `undefined` when there is nothing to send.
   */
  flush(): Uint8Array | undefined {
    if (this.#rows === 0 && this.#schemaSent) return undefined;
    const data = this.#builders.map((b) => b.finish());
    const empty = this.#rows === 0;
    this.#rows = 0;
    const columns = data.map((d, i) =>
      new ArrowColumn(empty ? [] : [toBatch(d)], this.#fields[i]!.type)
    );
    const bytes = tableToIPC(new Table(this.#schema, columns), { format: "stream" })!;
    // tableToIPC writes a whole stream: schema, batch, end-of-stream. The schema goes out once
    // (a message without body: the continuation token, its length, its metadata) and the end
    // marker only from end().
    const from = this.#schemaSent
      ? 8 + new DataView(bytes.buffer, bytes.byteOffset).getInt32(4, true)
      : 0;
    this.#schemaSent = true;
    return bytes.subarray(from, bytes.length - END_OF_STREAM.length);
  }

  /** The rest of the stream: any rows still collected, then the end-of-stream marker. */
  end(): Uint8Array {
    const rest = this.flush();
    if (rest === undefined) return END_OF_STREAM.slice();
    const out = new Uint8Array(rest.length + END_OF_STREAM.length);
    out.set(rest);
    out.set(END_OF_STREAM, rest.length);
    return out;
  }
}

const ESCAPES: Record<number, number> = {
  0x62: 0x08, // \b
  0x66: 0x0c, // \f
  0x6e: 0x0a, // \n
  0x72: 0x0d, // \r
  0x74: 0x09, // \t
  0x76: 0x0b, // \v
};

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hex(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

function toBatch(data: ColumnData): Batch<unknown> {
  return new Batch(
    {
      ...data,
      children: data.children?.map(toBatch),
    } as ConstructorParameters<typeof Batch>[0],
  );
}
