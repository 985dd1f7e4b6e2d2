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
      let k = start;
      for (let c = 0; c < codes.length; c++) {
        if (c > 0) k++; // the tab
        writeKey(w, keys[c]!);
        k = writeField(w, codes[c]!, line, k, end);
      }
      w.buf[w.pos++] = 0x7d; // }
      return;
    }
    // A long line: field by field, long fields as runs between escapes.
    let i = start;
    for (let c = 0; c < codes.length; c++) {
      let stop = c === codes.length - 1 ? end : indexOf.call(line, TAB, i);
      if (stop === -1 || stop > end) stop = end;
      const key = keys[c]!;
      if (stop - i > SHORT) {
        w.write(key);
        writeLong(w, codes[c]!, line, i, stop);
      } else {
        w.reserve(key.length + (stop - i) * GROWTH + 8);
        writeKey(w, key);
        writeField(w, codes[c]!, line, i, stop);
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

/** Where the value writers write: a buffer with enough room after `pos`. */
interface Sink {
  buf: Uint8Array;
  pos: number;
  readonly oneLine: boolean;
}

// Fields longer than this are written as runs between escapes (room checked per run) rather than
// with one reserve for their worst case.
const SHORT = 1024;

function writeKey(s: Sink, key: Uint8Array): void {
  const buf = s.buf;
  let p = s.pos;
  for (let j = 0; j < key.length; j++) buf[p++] = key[j]!;
  s.pos = p;
}

// Writes the field starting at line[k] — up to the next tab or `end` — as JSON of the given kind
// at s.pos (room reserved by the caller); returns where the field ended.
function writeField(s: Sink, code: number, line: Uint8Array, k: number, end: number): number {
  const buf = s.buf;
  let p = s.pos;
  if (line[k] === BACKSLASH && line[k + 1] === 0x4e && (k + 2 === end || line[k + 2] === TAB)) {
    buf[p++] = 0x6e, buf[p++] = 0x75, buf[p++] = 0x6c, buf[p++] = 0x6c; // \N: null
    s.pos = p;
    return k + 2;
  }
  switch (code) {
    case C_NUMBER: {
      const quoted = isQuotedNumber(line, k);
      if (quoted) buf[p++] = QUOTE;
      for (let b = line[k]!; k < end && b !== TAB; b = line[++k]!) buf[p++] = b;
      if (quoted) buf[p++] = QUOTE;
      break;
    }
    case C_STRING:
      buf[p++] = QUOTE;
      s.pos = p;
      k = escapeString(s, line, k, end);
      p = s.pos;
      buf[p++] = QUOTE;
      break;
    case C_BOOL:
      if (line[k] === 0x74) {
        buf[p++] = 0x74, buf[p++] = 0x72, buf[p++] = 0x75, buf[p++] = 0x65; // true
      } else {
        buf[p++] = 0x66, buf[p++] = 0x61, buf[p++] = 0x6c, buf[p++] = 0x73, buf[p++] = 0x65;
      }
      k++;
      break;
    case C_JSON:
      s.pos = p;
      k = unescapeJson(s, line, k, end);
      p = s.pos;
      break;
    default: {
      // Dates: "infinity"/"-infinity" are copied as they are; otherwise the first space is the
      // date/time separator (ISO DateStyle: `YYYY-MM-DD HH:MM:SS[.f][±HH[:MM[:SS]]][ BC]`).
      buf[p++] = QUOTE;
      let space = -1;
      if (code !== C_DATE) {
        for (let j = k; j < end && line[j] !== TAB; j++) {
          if (line[j] === SPACE) {
            space = j;
            break;
          }
        }
      }
      if (space !== -1) {
        for (; k < space; k++) buf[p++] = line[k]!;
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
      }
      for (let b = line[k]!; k < end && b !== TAB; b = line[++k]!) buf[p++] = b;
      buf[p++] = QUOTE;
    }
  }
  s.pos = p;
  return k;
}

// A long field: numbers (numeric has up to 147,455 digits) copied across chunks as they are; strings
// and json as runs of bytes that need no escape, one native copy each, with each escape on its
// own. Dates and booleans are never long.
function writeLong(w: ChunkWriter, code: number, line: Uint8Array, start: number, end: number) {
  if (code === C_NUMBER) {
    const quoted = isQuotedNumber(line, start);
    if (quoted) w.writeByte(QUOTE);
    w.write(plain(line).subarray(start, end));
    if (quoted) w.writeByte(QUOTE);
    return;
  }
  if (code !== C_STRING && code !== C_JSON) {
    w.reserve((end - start) * GROWTH + 8);
    writeField(w, code, line, start, end);
    return;
  }
  const bytes = plain(line);
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
    w.reserve(GROWTH + 2);
    k = json ? unescapeJson(w, bytes, k, k + 1) : escapeString(w, bytes, k, k + 1);
  }
  if (!json) w.writeByte(QUOTE);
}

// Returns the index of the first byte in bytes[k, end) that a JSON string must escape (a control
// byte, `"` or `\`), or `end`. Four bytes at a time while none of them is one (the usual bit
// tricks: a byte below 0x20, or equal to 0x22 or 0x5c, sets its high bit in `hit`), then byte by
// byte.
function skipPlain(bytes: Uint8Array, k: number, end: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (k + 4 <= end) {
    const x = view.getUint32(k, true);
    const q = x ^ 0x22222222;
    const b = x ^ 0x5c5c5c5c;
    const hit = ((x - 0x20202020) | (q - 0x01010101) | (b - 0x01010101)) & ~x & 0x80808080;
    if (hit !== 0) break;
    k += 4;
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

// Escapes COPY text from line[k] as JSON string content at s.pos (room reserved by the caller),
// up to a tab (the field's end) or `to`; returns where it stopped (past `to` by one when `to`
// split an escape).
function escapeString(s: Sink, line: Uint8Array, k: number, to: number): number {
  const buf = s.buf;
  let p = s.pos;
  while (k < to) {
    const b = line[k]!;
    if (STOP[b] === 0) {
      buf[p++] = b;
      k++;
    } else if (b === TAB) {
      break;
    } else if (b === QUOTE) {
      buf[p++] = BACKSLASH, buf[p++] = QUOTE;
      k++;
    } else if (b === BACKSLASH) {
      // COPY's escapes \\ \b \f \n \r \t are JSON's too; \v is not.
      const e = line[k + 1]!;
      if (e === 0x76) {
        buf[p++] = BACKSLASH, buf[p++] = 0x75, buf[p++] = 0x30, buf[p++] = 0x30;
        buf[p++] = 0x30, buf[p++] = 0x62; // \u000b
      } else {
        buf[p++] = BACKSLASH, buf[p++] = e;
      }
      k += 2;
    } else {
      // A control byte COPY left raw.
      buf[p++] = BACKSLASH, buf[p++] = 0x75, buf[p++] = 0x30, buf[p++] = 0x30;
      buf[p++] = HEX[b >> 4]!, buf[p++] = HEX[b & 15]!;
      k++;
    }
  }
  s.pos = p;
  return k;
}

// Undoes COPY's escapes in json text from line[k] at s.pos, up to a tab or `to`: the JSON text
// itself holds no raw control bytes but whitespace, and its line breaks become spaces for a
// oneLine writer. Returns where it stopped, as escapeString.
function unescapeJson(s: Sink, line: Uint8Array, k: number, to: number): number {
  const buf = s.buf;
  const lf = s.oneLine ? SPACE : LF;
  const cr = s.oneLine ? SPACE : CR;
  let p = s.pos;
  while (k < to) {
    const b = line[k]!;
    if (b === TAB) break;
    if (b !== BACKSLASH) {
      buf[p++] = b;
      k++;
      continue;
    }
    const e = line[k + 1]!;
    buf[p++] = e === 0x6e ? lf : e === 0x72 ? cr : e === 0x74 ? TAB : e;
    k += 2;
  }
  s.pos = p;
  return k;
}
