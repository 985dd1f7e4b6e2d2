import type { ChunkWriter } from "./_chunk_writer.ts";

/**
 * How PostgreSQL's `row_to_json` renders a column's value from its text output, for the built-in
 * types whose rendering can be reproduced from that text alone (json.c's `json_categorize_type`).
 */
export type JsonKind =
  /** int2/int4/int8/float4/float8/numeric: the text as a JSON number; NaN and ±Infinity quoted. */
  | "number"
  /** bool: `t`/`f` as `true`/`false`. */
  | "bool"
  /** json/jsonb: the text as is. */
  | "json"
  /** date (ISO DateStyle): the text as a JSON string. */
  | "date"
  /** timestamp (ISO DateStyle): `YYYY-MM-DD HH:MM:SS` as `"YYYY-MM-DDTHH:MM:SS"`. */
  | "timestamp"
  /** timestamptz (ISO DateStyle): as timestamp, with the offset always as `±HH:MM`. */
  | "timestamptz"
  /** Any other scalar type: the output text as a JSON string. */
  | "string";

// Built-in scalar types with their row_to_json rendering. Arrays, composites, domains, enums and
// extension types (which may have a cast to json) are not listed: a query returning one of those
// is rendered by the server instead.
const KINDS = new Map<number, JsonKind>([
  [16, "bool"],
  [20, "number"], // int8
  [21, "number"], // int2
  [23, "number"], // int4
  [700, "number"], // float4
  [701, "number"], // float8
  [1700, "number"], // numeric
  [114, "json"],
  [3802, "json"], // jsonb
  [1082, "date"],
  [1114, "timestamp"],
  [1184, "timestamptz"],
  [17, "string"], // bytea
  [18, "string"], // "char"
  [19, "string"], // name
  [25, "string"], // text
  [26, "string"], // oid
  [142, "string"], // xml
  [650, "string"], // cidr
  [774, "string"], // macaddr8
  [790, "string"], // money
  [829, "string"], // macaddr
  [869, "string"], // inet
  [1042, "string"], // bpchar
  [1043, "string"], // varchar
  [1083, "string"], // time
  [1186, "string"], // interval
  [1266, "string"], // timetz
  [1560, "string"], // bit
  [1562, "string"], // varbit
  [2950, "string"], // uuid
]);

/**
 * The {@linkcode JsonKind} of a built-in type, or `undefined` when sluice leaves the type's JSON to
 * the server.
 *
 * @param oid The type's oid.
 * @returns The kind, if the type is one sluice renders itself.
 */
export function jsonKindOf(oid: number): JsonKind | undefined {
  return KINDS.get(oid);
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SPACE = 0x20;
const HEX = new TextEncoder().encode("0123456789abcdef");
// The typed-array method: Deno's Buffer polyfill makes Buffer#indexOf several times slower.
const indexOf = Uint8Array.prototype.indexOf;

// Bytes that stop the copy loop inside a string value: control bytes (including the tab that ends
// the field), the double quote and the backslash.
const STOP = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) STOP[b] = 1;
STOP[QUOTE] = 1;
STOP[BACKSLASH] = 1;

// A line is at most this much longer as JSON than as COPY text, per byte: a raw control byte
// (one byte) becomes `\u00XX` (six).
const GROWTH = 6;

/**
 * Turns lines of `COPY … TO STDOUT` text format (tab-separated, `\N` for NULL, backslash escapes)
 * into the JSON text `row_to_json` gives for the same rows, without decoding them: numbers and
 * booleans are copied, strings quoted with the server's own escapes (`\"`, `\\`, `\b`, `\f`, `\n`,
 * `\r`, `\t`, `\u00XX`), timestamps rewritten into the ISO 8601 form `row_to_json` uses. Every
 * column must have a {@linkcode JsonKind}; the date kinds assume `DateStyle` ISO.
 *
 * @example Two columns
 * ```ts
 * import { CopyJsonEncoder } from "./copy_json.ts";
 * import { ChunkWriter } from "./_chunk_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const encoder = new CopyJsonEncoder([
 *   { name: "id", kind: "number" },
 *   { name: "note", kind: "string" },
 * ]);
 * const writer = new ChunkWriter();
 * encoder.writeLine(writer, new TextEncoder().encode('7\tsay "hi"\\n'));
 * const text = new TextDecoder().decode(writer.take()[0]);
 * assert.equal(text, '{"id":7,"note":"say \\"hi\\"\\n"}');
 * ```
 */
export class CopyJsonEncoder {
  readonly #codes: Uint8Array;
  // `{"a":`, `,"b":` … : each column's key, with what precedes it.
  readonly #keys: Uint8Array[];
  readonly #keyBytes: number;

  /**
   * @param columns The query's columns, in order, with the name `row_to_json` uses as key.
   */
  constructor(columns: readonly { name: string; kind: JsonKind }[]) {
    const encoder = new TextEncoder();
    this.#codes = Uint8Array.from(columns, (c) => CODES[c.kind]);
    this.#keys = columns.map((c, i) =>
      encoder.encode((i === 0 ? "{" : ",") + JSON.stringify(c.name) + ":")
    );
    this.#keyBytes = this.#keys.reduce((n, k) => n + k.length, 0);
  }

  /**
   * Writes one row's JSON (no line end).
   *
   * @param w Where to write.
   * @param line Holds one line of COPY text output, without its line feed, at `[start, end)`.
   * @param start Where the line starts (default 0).
   * @param end Where it ends (default: the end of `line`).
   */
  writeLine(w: ChunkWriter, line: Uint8Array, start = 0, end = line.length): void {
    const codes = this.#codes;
    const keys = this.#keys;
    if (codes.length === 0) {
      w.reserve(2);
      w.buf[w.pos++] = 0x7b, w.buf[w.pos++] = 0x7d; // {}
      return;
    }
    // The usual line: its worst case reserved at once, then one pass with no room checks, fields
    // found on the way.
    const worst = this.#keyBytes + (end - start) * GROWTH + 8;
    if (worst <= w.size >> 1) {
      w.reserve(worst);
      const p = writeColumns(
        w.buf,
        w.pos,
        codes,
        keys,
        0,
        codes.length,
        line,
        start,
        end,
        w.oneLine,
      );
      w.buf[p] = 0x7d; // }
      w.pos = p + 1;
      return;
    }
    // A long line: field by field, long fields as runs between escapes.
    let i = start;
    for (let c = 0; c < codes.length; c++) {
      let stop = c === codes.length - 1 ? end : indexOf.call(line, TAB, i);
      if (stop === -1 || stop > end) stop = end;
      const code = codes[c]!;
      if (stop - i > SHORT && (code === C_STRING || code === C_JSON || code === C_NUMBER)) {
        w.write(keys[c]!);
        writeLong(w, code, line, i, stop);
      } else {
        w.reserve(keys[c]!.length + (stop - i) * GROWTH + 8);
        w.pos = writeColumns(w.buf, w.pos, codes, keys, c, c + 1, line, i, stop, w.oneLine);
      }
      i = stop + 1;
    }
    w.reserve(1);
    w.buf[w.pos++] = 0x7d; // }
  }
}

const C_NUMBER = 0;
const C_BOOL = 1;
const C_JSON = 2;
const C_DATE = 3;
const C_TIMESTAMP = 4;
const C_TIMESTAMPTZ = 5;
const C_STRING = 6;
const CODES: Record<JsonKind, number> = {
  number: C_NUMBER,
  bool: C_BOOL,
  json: C_JSON,
  date: C_DATE,
  timestamp: C_TIMESTAMP,
  timestamptz: C_TIMESTAMPTZ,
  string: C_STRING,
};

// Fields longer than this are written as runs between escapes (room checked per run) rather than
// with one reserve for their worst case.
const SHORT = 1024;

// Where the last writeDate call stopped reading the line: a second return value without an
// allocation (the writers are synchronous and never re-entered).
let fieldEnd = 0;

// Writes columns [from, to) — each one's key, then its field, starting at line[k] and separated
// by tabs — into buf at p, where the caller reserved room for their worst case. Returns the
// position after them (the callers know where the fields end). Everything is kept in
// locals and the usual kinds are written in place (a helper call per field made the encoder
// about 25 % slower under Bun 1.4; the plain-byte and quote branches of strings stay inline).
function writeColumns(
  buf: Uint8Array,
  p: number,
  codes: Uint8Array,
  keys: readonly Uint8Array[],
  from: number,
  to: number,
  line: Uint8Array,
  k: number,
  end: number,
  oneLine: boolean,
): number {
  for (let c = from; c < to; c++) {
    if (c > from) k++; // the tab
    const key = keys[c]!;
    for (let j = 0; j < key.length; j++) buf[p++] = key[j]!;
    let b = line[k]!;
    if (b === BACKSLASH && line[k + 1] === 0x4e && (k + 2 === end || line[k + 2] === TAB)) {
      buf[p++] = 0x6e, buf[p++] = 0x75, buf[p++] = 0x6c, buf[p++] = 0x6c; // \N: null
      k += 2;
      continue;
    }
    const code = codes[c]!;
    if (code === C_NUMBER) {
      const quoted = isQuotedNumber(line, k);
      if (quoted) buf[p++] = QUOTE;
      while (k < end && b !== TAB) {
        buf[p++] = b;
        b = line[++k]!;
      }
      if (quoted) buf[p++] = QUOTE;
    } else if (code === C_STRING) {
      buf[p++] = QUOTE;
      while (k < end) {
        b = line[k]!;
        if (STOP[b] === 0) {
          buf[p++] = b;
          k++;
        } else if (b === TAB) {
          break;
        } else if (b === QUOTE) {
          buf[p++] = BACKSLASH, buf[p++] = QUOTE;
          k++;
        } else {
          p = writeEscape(buf, p, line, k);
          k += b === BACKSLASH ? 2 : 1;
        }
      }
      buf[p++] = QUOTE;
    } else if (code === C_BOOL) {
      if (b === 0x74) {
        buf[p++] = 0x74, buf[p++] = 0x72, buf[p++] = 0x75, buf[p++] = 0x65; // true
      } else {
        buf[p++] = 0x66, buf[p++] = 0x61, buf[p++] = 0x6c, buf[p++] = 0x73, buf[p++] = 0x65;
      }
      k++;
    } else if (code === C_JSON) {
      while (k < end) {
        b = line[k]!;
        if (b === TAB) break;
        if (b !== BACKSLASH) {
          buf[p++] = b;
          k++;
        } else {
          buf[p++] = unescapeJson(line[k + 1]!, oneLine);
          k += 2;
        }
      }
    } else {
      p = writeDate(buf, p, code, line, k, end);
      k = fieldEnd;
    }
  }
  return p;
}

// A date, timestamp or timestamptz field from line[k] (ISO DateStyle:
// `YYYY-MM-DD HH:MM:SS[.f][±HH[:MM[:SS]]][ BC]`) as a JSON string: "infinity"/"-infinity" are
// copied as they are; otherwise the first space becomes the `T` of ISO 8601. Returns the position
// after it and sets fieldEnd.
function writeDate(
  buf: Uint8Array,
  p: number,
  code: number,
  line: Uint8Array,
  k: number,
  end: number,
): number {
  buf[p++] = QUOTE;
  let b = line[k]!;
  if (code !== C_DATE) {
    while (k < end && b !== TAB && b !== SPACE) {
      buf[p++] = b;
      b = line[++k]!;
    }
    if (k < end && b === SPACE) {
      buf[p++] = 0x54; // T
      k++;
      if (code === C_TIMESTAMPTZ) {
        // The offset starts at the first sign after HH:MM:SS and runs to the end or " BC".
        let sign = k + 8;
        while (sign < end && line[sign] !== 0x2b && line[sign] !== 0x2d) sign++;
        let tzEnd = sign + 1;
        while (tzEnd < end && line[tzEnd] !== SPACE && line[tzEnd] !== TAB) tzEnd++;
        for (; k < tzEnd; k++) buf[p++] = line[k]!;
        // ISO prints a whole-hour offset as ±HH; row_to_json as ±HH:MM.
        if (tzEnd - sign === 3) buf[p++] = 0x3a, buf[p++] = 0x30, buf[p++] = 0x30;
      }
      b = line[k]!;
    }
  }
  while (k < end && b !== TAB) {
    buf[p++] = b;
    b = line[++k]!;
  }
  buf[p++] = QUOTE;
  fieldEnd = k;
  return p;
}

// A long field: numbers (numeric has up to 147,455 digits) copied across chunks as they are; strings
// and json as runs of bytes that need no escape, one native copy each, with each escape on its
// own. Dates and booleans are never long.
function writeLong(w: ChunkWriter, code: number, line: Uint8Array, start: number, end: number) {
  const bytes = plain(line);
  if (code === C_NUMBER) {
    const quoted = isQuotedNumber(bytes, start);
    if (quoted) w.writeByte(QUOTE);
    w.write(bytes.subarray(start, end));
    if (quoted) w.writeByte(QUOTE);
    return;
  }
  const json = code === C_JSON;
  if (!json) w.writeByte(QUOTE);
  let k = start;
  while (k < end) {
    const run = k;
    if (json) {
      k = indexOf.call(bytes, BACKSLASH, k);
      if (k === -1 || k > end) k = end;
    } else {
      k = skipPlain(bytes, k, end);
    }
    if (k > run) w.write(bytes.subarray(run, k));
    if (k >= end) break;
    w.reserve(GROWTH);
    if (json) {
      w.buf[w.pos++] = unescapeJson(bytes[k + 1]!, w.oneLine);
      k += 2;
    } else {
      w.pos = writeEscape(w.buf, w.pos, bytes, k);
      k += bytes[k] === BACKSLASH ? 2 : 1;
    }
  }
  if (!json) w.writeByte(QUOTE);
}

// Returns the index of the first byte in bytes[k, end) that a JSON string must escape (a control
// byte, `"` or `\`), or `end`. Four bytes at a time while none of them is one, through an aligned
// Uint32Array view (the usual bit tricks: a byte below 0x20, or equal to 0x22 or 0x5c, sets its
// high bit in `hit`, whatever the byte order; twice as fast as DataView reads under Deno 2.9), then
// byte by byte.
function skipPlain(bytes: Uint8Array, k: number, end: number): number {
  const offset = bytes.byteOffset;
  while (k < end && ((offset + k) & 3) !== 0) {
    if (STOP[bytes[k]!] !== 0) return k;
    k++;
  }
  const n = (end - k) >> 2;
  if (n > 0) {
    const words = new Uint32Array(bytes.buffer, offset + k, n);
    let i = 0;
    for (; i < n; i++) {
      const x = words[i]!;
      const q = x ^ 0x22222222;
      const b = x ^ 0x5c5c5c5c;
      if ((((x - 0x20202020) | (q - 0x01010101) | (b - 0x01010101)) & ~x & 0x80808080) !== 0) break;
    }
    k += i << 2;
  }
  while (k < end && STOP[bytes[k]!] === 0) k++;
  return k;
}

// A plain Uint8Array view: subarrays of Node Buffers go through Buffer's constructor, which Deno's
// polyfill makes slow.
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

// NaN, Infinity, -Infinity are not JSON numbers: row_to_json quotes them.
function isQuotedNumber(line: Uint8Array, start: number): boolean {
  const first = line[start];
  return first === 0x4e || first === 0x49 || (first === 0x2d && line[start + 1] === 0x49);
}

// Writes the JSON escape of the COPY text at line[k] — a double quote, a backslash escape (COPY's
// \\ \b \f \n \r \t are JSON's too; \v is not) or a control byte COPY left raw — into buf at p
// (at most GROWTH bytes); returns the position after it. The caller moves past the input: two
// bytes for a backslash escape, one otherwise.
function writeEscape(buf: Uint8Array, p: number, line: Uint8Array, k: number): number {
  const b = line[k]!;
  if (b === QUOTE) {
    buf[p++] = BACKSLASH, buf[p++] = QUOTE;
  } else if (b === BACKSLASH) {
    const e = line[k + 1]!;
    if (e === 0x76) {
      buf[p++] = BACKSLASH, buf[p++] = 0x75, buf[p++] = 0x30, buf[p++] = 0x30;
      buf[p++] = 0x30, buf[p++] = 0x62; // \u000b
    } else {
      buf[p++] = BACKSLASH, buf[p++] = e;
    }
  } else {
    buf[p++] = BACKSLASH, buf[p++] = 0x75, buf[p++] = 0x30, buf[p++] = 0x30;
    buf[p++] = HEX[b >> 4]!, buf[p++] = HEX[b & 15]!;
  }
  return p;
}

// The byte a COPY escape `\e` stands for inside json text: the JSON text holds no raw control
// bytes but whitespace, and its line breaks become spaces for a oneLine writer.
function unescapeJson(e: number, oneLine: boolean): number {
  return e === 0x6e
    ? (oneLine ? SPACE : LF)
    : e === 0x72
    ? (oneLine ? SPACE : CR)
    : e === 0x74
    ? TAB
    : e;
}
