import {
  binary,
  bool,
  dateDay,
  field,
  float32,
  float64,
  int16,
  int32,
  int64,
  interval,
  list,
  timeMicrosecond,
  timestamp,
  utf8,
} from "@uwdata/flechette";
import type { DataType, Field } from "@uwdata/flechette";
import { SluiceError } from "../errors.ts";
import type { Column } from "../sources/postgres_cursor.ts";
import { parseDate, parseInterval, parseTime, parseTimestamp, writeInt64 } from "./_text.ts";

/** The buffers of one column of one record batch, as Arrow lays them out. */
export interface ColumnData {
  type: DataType;
  length: number;
  nullCount: number;
  validity: Uint8Array;
  values?: ArrayBufferView;
  offsets?: Int32Array;
  children?: ColumnData[];
}

/**
 * Collects one column's values, each given as PostgreSQL's text output (`bytes[start, end)`),
 * into Arrow buffers. The buffers are reused from batch to batch: `finish()`'s views are only
 * valid until the next value is added.
 */
export interface ColumnBuilder {
  readonly type: DataType;
  /** Values added since the last `finish()`. */
  length: number;
  /** Bytes held in the buffers (for sizing batches). */
  readonly byteLength: number;
  add(bytes: Uint8Array, start: number, end: number): void;
  addNull(): void;
  finish(): ColumnData;
}

// Field metadata holding the column's PostgreSQL type oid.
const TYPE_METADATA_KEY = "sluice:pg_type";

/** A PostgreSQL type sluice maps to an Arrow type other than Utf8. */
type Kind =
  | "bool"
  | "int2"
  | "int4"
  | "int8"
  | "float4"
  | "float8"
  | "bytea"
  | "date"
  | "time"
  | "timestamp"
  | "timestamptz"
  | "interval"
  | "json"
  | "text";

const SCALARS: Record<number, Kind> = {
  16: "bool",
  17: "bytea",
  20: "int8",
  21: "int2",
  23: "int4",
  700: "float4",
  701: "float8",
  1082: "date",
  1083: "time",
  1114: "timestamp",
  1184: "timestamptz",
  1186: "interval",
  114: "json",
  3802: "json",
};

// One-dimensional arrays of the types above (and of the text types), by array type oid.
const ARRAYS: Record<number, number> = {
  1000: 16,
  1001: 17,
  1016: 20,
  1005: 21,
  1007: 23,
  1021: 700,
  1022: 701,
  1182: 1082,
  1183: 1083,
  1115: 1114,
  1185: 1184,
  1187: 1186,
  199: 114,
  3807: 3802,
  1009: 25,
  1015: 1043,
  1014: 1042,
  1003: 19,
  1002: 18,
  2951: 2950,
  1231: 1700,
};

/** The Arrow field of a result column, and a builder for its values. */
export function createColumn(column: Column): { field: Field; builder: ColumnBuilder } {
  const element = ARRAYS[column.type];
  if (element !== undefined) {
    const child = createScalarBuilder(element);
    const builder = new ListBuilder(child);
    return {
      field: field(
        column.name,
        builder.type,
        true,
        new Map([[TYPE_METADATA_KEY, String(column.type)]]),
      ),
      builder,
    };
  }
  const builder = createScalarBuilder(column.type);
  const metadata = new Map([[TYPE_METADATA_KEY, String(column.type)]]);
  // Marked as JSON in plain metadata, not as the canonical `arrow.json` extension type: Polars
  // (nodejs-polars 0.26) refuses to load a stream holding an extension type it does not know.
  if (SCALARS[column.type] === "json") metadata.set("sluice:format", "json");
  return { field: field(column.name, builder.type, true, metadata), builder };
}

function createScalarBuilder(oid: number): ColumnBuilder {
  switch (SCALARS[oid] ?? "text") {
    case "bool":
      return new BoolBuilder();
    case "int2":
      return new IntBuilder(int16(), Int16Array, -32768, 32767);
    case "int4":
      return new IntBuilder(int32(), Int32Array, -2147483648, 2147483647);
    case "int8":
      return new Int64Builder(int64(), parseInt64);
    case "float4":
      return new FloatBuilder(float32(), Float32Array);
    case "float8":
      return new FloatBuilder(float64(), Float64Array);
    case "date":
      return new IntBuilder(dateDay(), Int32Array, -2147483648, 2147483647, parseDate);
    case "time":
      return new Int64Builder(timeMicrosecond(), parseTime);
    case "timestamp":
      return new Int64Builder(timestamp(2, null), parseTimestamp);
    case "timestamptz":
      return new Int64Builder(timestamp(2, "UTC"), parseTimestamp);
    case "interval":
      return new IntervalBuilder();
    case "bytea":
      return new BytesBuilder(binary(), true);
    default:
      return new BytesBuilder(utf8(), false);
  }
}

/**
 * A bitmap of valid (non-NULL) values, written only once the batch has a NULL: most columns have
 * none, and a batch without NULLs sends no bitmap. Builders skip `set(i, true)` while `nulls` is 0.
 */
class Validity {
  bits = new Uint8Array(64);
  nulls = 0;

  set(index: number, valid: boolean): void {
    if (valid && this.nulls === 0) return;
    const byte = index >> 3;
    if (byte >= this.bits.length) this.bits = grow(this.bits, byte + 1);
    const bits = this.bits;
    if (this.nulls === 0) {
      // The batch's first NULL: every value before it was valid.
      bits.fill(0xff, 0, byte);
      bits[byte] = (1 << (index & 7)) - 1;
    }
    if (valid) bits[byte]! |= 1 << (index & 7);
    else {
      bits[byte]! &= ~(1 << (index & 7));
      this.nulls++;
    }
  }

  finish(length: number): Uint8Array {
    return this.nulls === 0 ? EMPTY : this.bits.subarray(0, (length + 7) >> 3);
  }

  reset(): void {
    this.nulls = 0;
  }
}

const EMPTY = new Uint8Array(0);

function grow<T extends Uint8Array | Int32Array | Float32Array | Float64Array | Int16Array>(
  array: T,
  needed: number,
): T {
  let size = array.length * 2;
  while (size < needed) size *= 2;
  const next = new (array.constructor as new (n: number) => T)(size);
  next.set(array);
  return next;
}

/**
 * Fails the stream on a value the column's Arrow type cannot hold exactly (or text in a style
 * sluice does not read): a wrong value is never written.
 */
function failValue(what: string, bytes: Uint8Array, start: number, end: number): never {
  const text = new TextDecoder().decode(bytes.subarray(start, Math.min(end, start + 64)));
  throw new SluiceError(
    "BAD_INPUT",
    `Cannot write ${
      JSON.stringify(text)
    } as an Arrow ${what}: current value is out of the type's range or not in PostgreSQL's default output style (DateStyle ISO, IntervalStyle postgres, bytea_output hex)`,
  );
}

/** Parses a decimal integer; `NaN` when the text is not one. */
function parseSmallInt(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  const negative = bytes[i] === 0x2d;
  if (negative) i++;
  if (i === end || end - i > 15) return NaN;
  let n = 0;
  for (; i < end; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

class IntBuilder implements ColumnBuilder {
  length = 0;
  values: Int16Array | Int32Array;
  readonly validity = new Validity();
  constructor(
    readonly type: DataType,
    Array: typeof Int16Array | typeof Int32Array,
    readonly min: number,
    readonly max: number,
    readonly parse: (b: Uint8Array, s: number, e: number) => number = parseSmallInt,
  ) {
    this.values = new Array(1024);
  }
  get byteLength(): number {
    return this.length * this.values.BYTES_PER_ELEMENT;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const n = this.parse(bytes, start, end);
    if (!(n >= this.min && n <= this.max)) failValue("integer", bytes, start, end);
    const i = this.length++;
    if (i >= this.values.length) this.values = grow(this.values, i + 1);
    this.values[i] = n;
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  addNull(): void {
    const i = this.length++;
    if (i >= this.values.length) this.values = grow(this.values, i + 1);
    this.values[i] = 0;
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      values: this.values.subarray(0, this.length),
    };
    this.length = 0;
    this.validity.reset();
    return data;
  }
}

/** Writes the int64 value of `bytes[start, end)` at `words[2i]`, `words[2i + 1]`. */
type Int64Parser = (
  bytes: Uint8Array,
  start: number,
  end: number,
  words: Int32Array,
  index: number,
) => boolean;

function parseInt64(
  bytes: Uint8Array,
  start: number,
  end: number,
  words: Int32Array,
  index: number,
): boolean {
  const n = parseSmallInt(bytes, start, end);
  if (n === n) {
    writeInt64(words, index, n);
    return true;
  }
  // More than 15 digits: exact through BigInt.
  let text = "";
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  if (!/^-?\d+$/.test(text)) return false;
  const big = BigInt.asIntN(64, BigInt(text));
  words[2 * index] = Number(big & 0xffffffffn) | 0;
  words[2 * index + 1] = Number(big >> 32n) | 0;
  return true;
}

/** int8, time, timestamp, timestamptz: 64-bit values written as two 32-bit words. */
class Int64Builder implements ColumnBuilder {
  length = 0;
  words = new Int32Array(2048);
  readonly validity = new Validity();
  constructor(readonly type: DataType, readonly parse: Int64Parser) {}
  get byteLength(): number {
    return this.length * 8;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const i = this.length++;
    if (2 * i + 1 >= this.words.length) this.words = grow(this.words, 2 * i + 2);
    if (!this.parse(bytes, start, end, this.words, i)) {
      failValue(this.type.typeId === 2 ? "integer" : "timestamp", bytes, start, end);
    }
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  addNull(): void {
    const i = this.length++;
    if (2 * i + 1 >= this.words.length) this.words = grow(this.words, 2 * i + 2);
    this.words[2 * i] = 0;
    this.words[2 * i + 1] = 0;
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      values: new BigInt64Array(this.words.buffer, 0, this.length),
    };
    this.length = 0;
    this.validity.reset();
    return data;
  }
}

/** Reads ASCII bytes as a string. */
function ascii(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

class FloatBuilder implements ColumnBuilder {
  length = 0;
  values: Float32Array | Float64Array;
  readonly validity = new Validity();
  constructor(readonly type: DataType, Array: typeof Float32Array | typeof Float64Array) {
    this.values = new Array(1024);
  }
  get byteLength(): number {
    return this.length * this.values.BYTES_PER_ELEMENT;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    // PostgreSQL prints NaN, Infinity and -Infinity, which Number() reads as the same IEEE values.
    const n = Number(ascii(bytes, start, end));
    const i = this.length++;
    if (i >= this.values.length) this.values = grow(this.values, i + 1);
    this.values[i] = n;
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  addNull(): void {
    const i = this.length++;
    if (i >= this.values.length) this.values = grow(this.values, i + 1);
    this.values[i] = 0;
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      values: this.values.subarray(0, this.length),
    };
    this.length = 0;
    this.validity.reset();
    return data;
  }
}

class BoolBuilder implements ColumnBuilder {
  readonly type: DataType = bool();
  length = 0;
  values = new Uint8Array(64);
  readonly validity = new Validity();
  get byteLength(): number {
    return this.length >> 3;
  }
  #set(value: boolean): void {
    const i = this.length++;
    const byte = i >> 3;
    if (byte >= this.values.length) this.values = grow(this.values, byte + 1);
    if (value) this.values[byte]! |= 1 << (i & 7);
    else this.values[byte]! &= ~(1 << (i & 7));
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const c = bytes[start];
    if (end - start !== 1 || (c !== 0x74 && c !== 0x66)) failValue("boolean", bytes, start, end);
    this.#set(c === 0x74);
  }
  addNull(): void {
    this.#set(false);
    this.validity.set(this.length - 1, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      values: this.values.subarray(0, (this.length + 7) >> 3),
    };
    this.length = 0;
    this.validity.reset();
    return data;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Utf8 (the text as it is) and Binary (bytea's hex output decoded). */
class BytesBuilder implements ColumnBuilder {
  length = 0;
  offsets = new Int32Array(1024);
  data = new Uint8Array(64 * 1024);
  size = 0;
  readonly validity = new Validity();
  constructor(readonly type: DataType, readonly hex: boolean) {}
  get byteLength(): number {
    return this.size + this.length * 4;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const i = this.length++;
    if (i + 1 >= this.offsets.length) this.offsets = grow(this.offsets, i + 2);
    let size = this.size;
    if (this.hex) {
      // bytea_output = hex (the default since PostgreSQL 9.0): \x then two digits a byte.
      if (bytes[start] !== 0x5c || bytes[start + 1] !== 0x78 || (end - start) % 2 !== 0) {
        failValue("binary", bytes, start, end);
      }
      const n = (end - start - 2) >> 1;
      if (size + n > this.data.length) this.data = grow(this.data, size + n);
      const data = this.data;
      for (let p = start + 2; p < end; p += 2) {
        const hi = hexDigit(bytes[p]!);
        const lo = hexDigit(bytes[p + 1]!);
        if (hi < 0 || lo < 0) failValue("binary", bytes, start, end);
        data[size++] = (hi << 4) | lo;
      }
    } else {
      const n = end - start;
      if (size + n > this.data.length) this.data = grow(this.data, size + n);
      const data = this.data;
      // A byte loop beats allocating a view for all but long values.
      if (n <= 256) { for (let p = start; p < end; p++) data[size++] = bytes[p]!; }
      else {
        // A plain view: subarray() on the driver's Buffer goes through its species constructor,
        // which is slow in Deno's Buffer polyfill.
        data.set(new Uint8Array(bytes.buffer, bytes.byteOffset + start, n), size);
        size += n;
      }
    }
    if (size > 0x7fffffff) failValue("string batch (at most 2 GiB)", bytes, start, end);
    this.size = size;
    this.offsets[i + 1] = size;
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  addNull(): void {
    const i = this.length++;
    if (i + 1 >= this.offsets.length) this.offsets = grow(this.offsets, i + 2);
    this.offsets[i + 1] = this.size;
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      offsets: this.offsets.subarray(0, this.length + 1),
      values: this.data.subarray(0, this.size),
    };
    this.length = 0;
    this.size = 0;
    this.validity.reset();
    return data;
  }
}

/** Interval(MonthDayNano): int32 months, int32 days, int64 nanoseconds per value. */
class IntervalBuilder implements ColumnBuilder {
  readonly type: DataType = interval(2);
  length = 0;
  words = new Int32Array(4096);
  readonly validity = new Validity();
  get byteLength(): number {
    return this.length * 16;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const i = this.length++;
    if (4 * i + 3 >= this.words.length) this.words = grow(this.words, 4 * i + 4);
    if (!parseInterval(ascii(bytes, start, end), this.words, i)) {
      failValue("interval", bytes, start, end);
    }
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  addNull(): void {
    const i = this.length++;
    if (4 * i + 3 >= this.words.length) this.words = grow(this.words, 4 * i + 4);
    this.words.fill(0, 4 * i, 4 * i + 4);
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      values: new Uint8Array(this.words.buffer, 0, this.length * 16),
    };
    this.length = 0;
    this.validity.reset();
    return data;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

/**
 * List of the element type, from an array's text output (`{1,2,NULL,"a b"}`). Multidimensional
 * arrays and arrays with explicit bounds (`[0:1]={…}`) have no List equivalent and fail the stream.
 */
class ListBuilder implements ColumnBuilder {
  readonly type: DataType;
  length = 0;
  offsets = new Int32Array(1024);
  count = 0;
  readonly validity = new Validity();
  #scratch = new Uint8Array(256);
  constructor(readonly child: ColumnBuilder) {
    this.type = list(field("item", child.type, true));
  }
  get byteLength(): number {
    return this.length * 4 + this.child.byteLength;
  }
  add(bytes: Uint8Array, start: number, end: number): void {
    const i = this.length++;
    if (i + 1 >= this.offsets.length) this.offsets = grow(this.offsets, i + 2);
    if (bytes[start] !== OPEN || bytes[end - 1] !== CLOSE || bytes[start + 1] === OPEN) {
      failValue("list (one-dimensional arrays with default bounds only)", bytes, start, end);
    }
    let p = start + 1;
    const last = end - 1;
    if (p < last) {
      for (;;) {
        p = this.#element(bytes, p, last);
        this.count++;
        if (p >= last) break;
        if (bytes[p] !== COMMA) failValue("list", bytes, start, end);
        p++;
      }
    }
    this.offsets[i + 1] = this.count;
    if (this.validity.nulls !== 0) this.validity.set(i, true);
  }
  // Adds the element starting at `p`; returns where it ends.
  #element(bytes: Uint8Array, p: number, last: number): number {
    if (bytes[p] === QUOTE) {
      let n = 0;
      let q = p + 1;
      for (; q < last && bytes[q] !== QUOTE; q++) {
        if (bytes[q] === BACKSLASH) q++;
        if (n >= this.#scratch.length) this.#scratch = grow(this.#scratch, n + 1);
        this.#scratch[n++] = bytes[q]!;
      }
      this.child.add(this.#scratch, 0, n);
      return q + 1;
    }
    let q = p;
    while (q < last && bytes[q] !== COMMA) q++;
    // An unquoted NULL is SQL NULL (a string "NULL" is always quoted).
    if (
      q - p === 4 && bytes[p] === 0x4e && bytes[p + 1] === 0x55 && bytes[p + 2] === 0x4c &&
      bytes[p + 3] === 0x4c
    ) {
      this.child.addNull();
    } else if (bytes[p] === OPEN) {
      failValue("list (one-dimensional arrays only)", bytes, p, last);
    } else this.child.add(bytes, p, q);
    return q;
  }
  addNull(): void {
    const i = this.length++;
    if (i + 1 >= this.offsets.length) this.offsets = grow(this.offsets, i + 2);
    this.offsets[i + 1] = this.count;
    this.validity.set(i, false);
  }
  finish(): ColumnData {
    const data = {
      type: this.type,
      length: this.length,
      nullCount: this.validity.nulls,
      validity: this.validity.finish(this.length),
      offsets: this.offsets.subarray(0, this.length + 1),
      children: [this.child.finish()],
    };
    this.length = 0;
    this.count = 0;
    this.validity.reset();
    return data;
  }
}
