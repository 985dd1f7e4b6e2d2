import { SluiceError } from "../errors.ts";
import { ByteSink } from "./_byte_sink.ts";
import { quoteName } from "./_target.ts";
import type { FieldKind, ValueKind } from "./_target.ts";

/** A column NDJSON values are written to. */
export interface CopyColumn {
  /** The column name (a key of each NDJSON object). */
  readonly name: string;
  /** How its values are converted. */
  readonly type: ValueKind;
}

// A fault inside a line; `NdjsonToCopy.writeLine` turns it into a SluiceError naming line and key.
class Fault {
  constructor(readonly what: string) {}
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const MAX_DEPTH = 512;

const decoder = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

function isWs(b: number): boolean {
  return b === SPACE || b === TAB || b === LF || b === CR;
}

function skipWs(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(buf[i]!)) i++;
  return i;
}

function describe(buf: Uint8Array, i: number, end: number): string {
  if (i >= end) return "the end of the line";
  const b = buf[i]!;
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16)}`;
}

function expected(what: string, buf: Uint8Array, i: number, end: number): Fault {
  return new Fault(`expected ${what} at byte ${i + 1}, found ${describe(buf, i, end)}`);
}

// Set by scanString: whether the string held a backslash escape.
let escaped = false;

/** Finds the end of a JSON string starting at `i` (a quote); returns the index after its end. */
function scanString(buf: Uint8Array, i: number, end: number): number {
  escaped = false;
  for (let j = i + 1; j < end; j++) {
    const b = buf[j]!;
    if (b === QUOTE) return j + 1;
    if (b === BACKSLASH) {
      escaped = true;
      j++;
    } else if (b < 0x20) {
      throw new Fault(`control character 0x${b.toString(16)} in a string (must be escaped)`);
    }
  }
  throw new Fault("unterminated string");
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** Checks a JSON number starting at `i`; returns the index after it. */
function scanNumber(buf: Uint8Array, i: number, end: number): number {
  let j = i;
  if (buf[j] === 0x2d) j++;
  if (j < end && buf[j] === 0x30) j++;
  else if (j < end && isDigit(buf[j])) { while (j < end && isDigit(buf[j])) j++; }
  else throw expected("a digit", buf, j, end);
  if (j < end && buf[j] === 0x2e) {
    j++;
    if (!(j < end && isDigit(buf[j]))) throw expected("a digit", buf, j, end);
    while (j < end && isDigit(buf[j])) j++;
  }
  if (j < end && (buf[j] === 0x65 || buf[j] === 0x45)) {
    j++;
    if (j < end && (buf[j] === 0x2b || buf[j] === 0x2d)) j++;
    if (!(j < end && isDigit(buf[j]))) throw expected("a digit", buf, j, end);
    while (j < end && isDigit(buf[j])) j++;
  }
  return j;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function scanLiteral(buf: Uint8Array, i: number, end: number, word: number[]): number {
  for (let k = 0; k < word.length; k++) {
    if (i + k >= end || buf[i + k] !== word[k]) {
      throw expected(`'${String.fromCharCode(...word)}'`, buf, i + k, end);
    }
  }
  return i + word.length;
}

/** Checks any JSON value starting at `i` (no leading whitespace); returns the index after it. */
function skipValue(buf: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new Fault(`nested deeper than ${MAX_DEPTH} levels`);
  const b = buf[i];
  if (b === QUOTE) return scanString(buf, i, end);
  if (b === 0x7b || b === 0x5b) {
    const close = b === 0x7b ? 0x7d : 0x5d;
    let j = skipWs(buf, i + 1, end);
    if (buf[j] === close) return j + 1;
    for (;;) {
      if (b === 0x7b) {
        if (buf[j] !== QUOTE) throw expected("a string key", buf, j, end);
        j = skipWs(buf, scanString(buf, j, end), end);
        if (buf[j] !== 0x3a) throw expected("':'", buf, j, end);
        j = skipWs(buf, j + 1, end);
      }
      j = skipWs(buf, skipValue(buf, j, end, depth + 1), end);
      if (buf[j] === close) return j + 1;
      if (buf[j] !== 0x2c) throw expected(b === 0x7b ? "',' or '}'" : "',' or ']'", buf, j, end);
      j = skipWs(buf, j + 1, end);
    }
  }
  if (b === 0x74) return scanLiteral(buf, i, end, TRUE);
  if (b === 0x66) return scanLiteral(buf, i, end, FALSE);
  if (b === 0x6e) return scanLiteral(buf, i, end, NULL);
  if (b === 0x2d || isDigit(b)) return scanNumber(buf, i, end);
  throw expected("a value", buf, i, end);
}

function hex(buf: Uint8Array, i: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = buf[i + k];
    let d: number;
    if (c === undefined) d = -1;
    else if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else d = -1;
    if (d < 0) throw new Fault("bad \\u escape (4 hex digits expected)");
    v = v * 16 + d;
  }
  return v;
}

const OCTAL = (c: number) => [BACKSLASH, 0x30 + (c >> 6), 0x30 + ((c >> 3) & 7), 0x30 + (c & 7)];

/**
 * Writes a JSON string's content `[a, b)` (between its quotes, with escapes) as COPY text. JSON's
 * two-character escapes \b \f \n \r \t \\ are COPY text's too; \" and \/ lose their backslash;
 * \uXXXX becomes UTF-8, with control characters and backslash escaped for COPY.
 */
function writeEscapedString(buf: Uint8Array, a: number, b: number, out: ByteSink): void {
  out.reserve((b - a) * 2);
  const o = out.bytes;
  let n = out.length;
  for (let i = a; i < b; i++) {
    const c = buf[i]!;
    if (c !== BACKSLASH) {
      o[n++] = c;
      continue;
    }
    const e = buf[++i];
    switch (e) {
      case 0x22: // "
      case 0x2f: // /
        o[n++] = e;
        break;
      case 0x5c:
      case 0x62: // b
      case 0x66: // f
      case 0x6e: // n
      case 0x72: // r
      case 0x74: // t
        o[n++] = BACKSLASH;
        o[n++] = e;
        break;
      case 0x75: { // u
        let cp = hex(buf, i + 1);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (buf[i + 1] !== BACKSLASH || buf[i + 2] !== 0x75) {
            throw new Fault("unpaired surrogate in a \\u escape");
          }
          const lo = hex(buf, i + 3);
          if (lo < 0xdc00 || lo > 0xdfff) throw new Fault("unpaired surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          throw new Fault("unpaired surrogate in a \\u escape");
        }
        if (cp < 0x20 || cp === 0x7f) {
          for (const x of OCTAL(cp)) o[n++] = x;
        } else if (cp === BACKSLASH) {
          o[n++] = BACKSLASH;
          o[n++] = BACKSLASH;
        } else if (cp < 0x80) {
          o[n++] = cp;
        } else if (cp < 0x800) {
          o[n++] = 0xc0 | (cp >> 6);
          o[n++] = 0x80 | (cp & 0x3f);
        } else if (cp < 0x10000) {
          o[n++] = 0xe0 | (cp >> 12);
          o[n++] = 0x80 | ((cp >> 6) & 0x3f);
          o[n++] = 0x80 | (cp & 0x3f);
        } else {
          o[n++] = 0xf0 | (cp >> 18);
          o[n++] = 0x80 | ((cp >> 12) & 0x3f);
          o[n++] = 0x80 | ((cp >> 6) & 0x3f);
          o[n++] = 0x80 | (cp & 0x3f);
        }
        break;
      }
      default:
        throw new Fault(`bad escape \\${e === undefined ? "" : String.fromCharCode(e)}`);
    }
  }
  out.length = n;
}

/** Writes raw JSON text `[a, b)` as COPY text: backslashes doubled, whitespace controls escaped. */
function writeRawJson(buf: Uint8Array, a: number, b: number, out: ByteSink): void {
  out.reserve((b - a) * 2);
  const o = out.bytes;
  let n = out.length;
  for (let i = a; i < b; i++) {
    const c = buf[i]!;
    if (c === BACKSLASH) {
      o[n++] = BACKSLASH;
      o[n++] = BACKSLASH;
    } else if (c === TAB) {
      o[n++] = BACKSLASH;
      o[n++] = 0x74;
    } else if (c === CR) {
      o[n++] = BACKSLASH;
      o[n++] = 0x72;
    } else if (c === LF) {
      o[n++] = BACKSLASH;
      o[n++] = 0x6e;
    } else {
      o[n++] = c;
    }
  }
  out.length = n;
}

/** Writes a JS string as COPY text. */
function writeText(text: string, out: ByteSink): void {
  const escapedText = text.replace(
    /[\\\t\n\r]/g,
    (c) => c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
  out.reserve(escapedText.length * 3);
  const { written } = encoder.encodeInto(escapedText, out.bytes.subarray(out.length));
  out.length += written;
}

// A parsed JSON value, for array and composite columns (numbers keep their text).
const T = {
  Null: 0,
  Plain: 1, // number, true, false: used as written
  Str: 2,
  Arr: 3,
  Obj: 4,
} as const;
interface JNode {
  t: number;
  s: number;
  e: number;
  v?: string;
  items?: JNode[];
  keys?: string[];
}

function decodeString(buf: Uint8Array, s: number, e: number): string {
  let plain = true;
  for (let i = s + 1; i < e - 1; i++) {
    if (buf[i] === BACKSLASH) {
      plain = false;
      break;
    }
  }
  const text = decoder.decode(buf.subarray(plain ? s + 1 : s, plain ? e - 1 : e));
  return plain ? text : JSON.parse(text) as string;
}

function parseNode(buf: Uint8Array, i: number, end: number, depth: number): JNode {
  if (depth > MAX_DEPTH) throw new Fault(`nested deeper than ${MAX_DEPTH} levels`);
  const b = buf[i];
  if (b === QUOTE) {
    const e = scanString(buf, i, end);
    return { t: T.Str, s: i, e, v: decodeString(buf, i, e) };
  }
  if (b === 0x7b || b === 0x5b) {
    const object = b === 0x7b;
    const close = object ? 0x7d : 0x5d;
    const items: JNode[] = [];
    const keys: string[] = [];
    let j = skipWs(buf, i + 1, end);
    if (buf[j] !== close) {
      for (;;) {
        if (object) {
          if (buf[j] !== QUOTE) throw expected("a string key", buf, j, end);
          const ke = scanString(buf, j, end);
          keys.push(decodeString(buf, j, ke));
          j = skipWs(buf, ke, end);
          if (buf[j] !== 0x3a) throw expected("':'", buf, j, end);
          j = skipWs(buf, j + 1, end);
        }
        const item = parseNode(buf, j, end, depth + 1);
        items.push(item);
        j = skipWs(buf, item.e, end);
        if (buf[j] === close) break;
        if (buf[j] !== 0x2c) throw expected(object ? "',' or '}'" : "',' or ']'", buf, j, end);
        j = skipWs(buf, j + 1, end);
      }
    }
    return object ? { t: T.Obj, s: i, e: j + 1, items, keys } : { t: T.Arr, s: i, e: j + 1, items };
  }
  if (b === 0x6e) return { t: T.Null, s: i, e: scanLiteral(buf, i, end, NULL) };
  return { t: T.Plain, s: i, e: skipValue(buf, i, end, depth) };
}

function quote(text: string): string {
  return `"${text.replace(/["\\]/g, "\\$&")}"`;
}

function rawText(buf: Uint8Array, node: JNode): string {
  return decoder.decode(buf.subarray(node.s, node.e));
}

/** An array literal (`{…}`) from a JSON array; nested arrays are further dimensions. */
function arrayLiteral(buf: Uint8Array, node: JNode, element: ValueKind, delimiter: string): string {
  const parts: string[] = [];
  for (const item of node.items!) {
    if (item.t === T.Null) parts.push("NULL");
    else if (item.t === T.Arr && element.kind !== "json") {
      parts.push(arrayLiteral(buf, item, element, delimiter));
    } else parts.push(quote(valueText(buf, item, element)));
  }
  return `{${parts.join(delimiter)}}`;
}

/** A record literal (`(…)`) from a JSON object, fields in the type's order. */
function recordLiteral(buf: Uint8Array, node: JNode, fields: readonly FieldKind[]): string {
  const values = new Map<string, JNode>();
  node.keys!.forEach((key, k) => values.set(key, node.items![k]!));
  for (const key of values.keys()) {
    if (!fields.some((f) => f.name === key)) throw new Fault(`unknown field ${quoteName(key)}`);
  }
  return `(${
    fields.map((f) => {
      const item = values.get(f.name);
      return item === undefined || item.t === T.Null ? "" : quote(valueText(buf, item, f.type));
    }).join(",")
  })`;
}

/** The text PostgreSQL's input function for `kind` gets for a (non-null) JSON value. */
function valueText(buf: Uint8Array, node: JNode, kind: ValueKind): string {
  if (kind.kind === "json") return rawText(buf, node);
  if (kind.kind === "array" && node.t === T.Arr) {
    return arrayLiteral(buf, node, kind.element, kind.delimiter);
  }
  if (kind.kind === "composite" && node.t === T.Obj) return recordLiteral(buf, node, kind.fields);
  if (node.t === T.Str) return node.v!;
  return rawText(buf, node);
}

/**
 * Turns NDJSON lines (one JSON object each) into COPY text-format lines for a fixed list of
 * columns. Works on the UTF-8 bytes: strings are copied with their escapes translated, numbers
 * keep their exact text, `json`/`jsonb` values keep their JSON text, arrays and composites become
 * PostgreSQL literals. A key missing from a line is NULL; an unknown or repeated key is an error.
 */
export class NdjsonToCopy {
  readonly #columns: readonly CopyColumn[];
  readonly #names: Uint8Array[];
  readonly #byName: Map<string, number>;
  readonly #scratch = new ByteSink(4096);
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  readonly #order: number[] = [];
  readonly #simple: boolean[];
  readonly #label: string;
  readonly #unknown: (key: string) => string;
  readonly #json: boolean[];
  #valueStart = 0;

  /**
   * Creates a converter.
   *
   * @param columns The COPY column list, in order.
   * @param unknown Explains why a key is not a column, for errors.
   * @param label What the body is called in error messages.
   */
  constructor(
    columns: readonly CopyColumn[],
    unknown: (key: string) => string = () => "unknown column",
    label = "the NDJSON body",
  ) {
    this.#unknown = unknown;
    this.#columns = columns;
    this.#names = columns.map((c) => encoder.encode(c.name));
    this.#byName = new Map(columns.map((c, i) => [c.name, i]));
    this.#starts = new Int32Array(columns.length);
    this.#ends = new Int32Array(columns.length);
    this.#simple = columns.map((c) => c.type.kind === "scalar");
    this.#json = columns.map((c) => c.type.kind === "json");
    this.#label = label;
  }

  #column(buf: Uint8Array, s: number, e: number, position: number): number {
    const hint = this.#order[position];
    if (hint !== undefined && !escaped) {
      const name = this.#names[hint]!;
      const n = e - s - 2;
      if (name.length === n) {
        let k = 0;
        while (k < n && name[k] === buf[s + 1 + k]) k++;
        if (k === n) return hint;
      }
    }
    const key = decodeString(buf, s, e);
    const index = this.#byName.get(key);
    if (index === undefined) return -1 - position;
    this.#order[position] = index;
    return index;
  }

  /**
   * Appends the COPY line for one NDJSON line.
   *
   * @param buf Bytes holding the line.
   * @param start First byte of the line.
   * @param end Byte after the line (its `\n` excluded; a trailing `\r` is ignored).
   * @param line The line's number, for errors.
   * @param out Where the COPY text goes.
   * @throws {SluiceError} `BAD_INPUT` naming the line (and the key, when known).
   */
  writeLine(buf: Uint8Array, start: number, end: number, line: number, out: ByteSink): void {
    if (end > start && buf[end - 1] === CR) end--;
    const n = this.#columns.length;
    const starts = this.#starts;
    const ends = this.#ends;
    starts.fill(-1); // -1: not seen, -2: null, else the value's start in scratch
    const scratch = this.#scratch;
    scratch.length = 0;
    let key: string | undefined;
    try {
      let i = skipWs(buf, start, end);
      if (i === end) throw new Fault("empty line (each line must hold one JSON object)");
      if (buf[i] !== 0x7b) throw expected("'{' (each line must hold one JSON object)", buf, i, end);
      i = skipWs(buf, i + 1, end);
      let position = 0;
      if (buf[i] !== 0x7d) {
        for (;;) {
          key = undefined;
          if (buf[i] !== QUOTE) throw expected("a string key", buf, i, end);
          const ke = scanString(buf, i, end);
          const col = this.#column(buf, i, ke, position);
          if (col < 0) {
            key = decodeString(buf, i, ke);
            throw new Fault(this.#unknown(key));
          }
          key = this.#columns[col]!.name;
          if (starts[col] !== -1) throw new Fault("the key appears twice");
          i = skipWs(buf, ke, end);
          if (buf[i] !== 0x3a) throw expected("':'", buf, i, end);
          const colon = i + 1;
          i = skipWs(buf, colon, end);
          i = this.#value(buf, i, end, col);
          const after = i;
          i = skipWs(buf, i, end);
          // row_to_json embeds a json column's text verbatim, whitespace around it included.
          if (
            this.#json[col] && this.#starts[col]! >= 0 &&
            (colon !== this.#valueStart || after !== i)
          ) {
            this.#scratch.length = this.#starts[col]!;
            writeRawJson(buf, colon, i, this.#scratch);
            this.#ends[col] = this.#scratch.length;
          }
          position++;
          if (buf[i] === 0x7d) break;
          if (buf[i] !== 0x2c) throw expected("',' or '}'", buf, i, end);
          i = skipWs(buf, i + 1, end);
        }
      }
      key = undefined;
      i = skipWs(buf, i + 1, end);
      if (i !== end) throw expected("the end of the line after the object", buf, i, end);
    } catch (error) {
      if (!(error instanceof Fault)) throw error;
      const where = key === undefined ? "" : `, column ${quoteName(key)}`;
      throw new SluiceError(
        "BAD_INPUT",
        `Cannot ingest line ${line} of ${this.#label}${where}: ${error.what}`,
      );
    }
    let size = n + 1;
    for (let c = 0; c < n; c++) size += starts[c]! < 0 ? 2 : ends[c]! - starts[c]!;
    out.reserve(size);
    const o = out.bytes;
    let p = out.length;
    const s = scratch.bytes;
    for (let c = 0; c < n; c++) {
      if (c > 0) o[p++] = TAB;
      const a = starts[c]!;
      if (a < 0) {
        o[p++] = BACKSLASH;
        o[p++] = 0x4e; // N
        continue;
      }
      const b = ends[c]!;
      if (b - a < 32) { for (let k = a; k < b; k++) o[p++] = s[k]!; }
      else {
        o.set(s.subarray(a, b), p);
        p += b - a;
      }
    }
    o[p++] = LF;
    out.length = p;
  }

  /** Converts one value into the scratch buffer; returns the index after it. */
  #value(buf: Uint8Array, i: number, end: number, col: number): number {
    this.#valueStart = i;
    const scratch = this.#scratch;
    const b = buf[i];
    const from = scratch.length;
    let next: number;
    if (b === 0x6e) {
      next = scanLiteral(buf, i, end, NULL);
      this.#starts[col] = -2; // seen, NULL
      return next;
    }
    const type = this.#columns[col]!.type;
    if (b === QUOTE && type.kind !== "json") {
      next = scanString(buf, i, end);
      if (escaped) writeEscapedString(buf, i + 1, next - 1, scratch);
      else scratch.append(buf, i + 1, next - 1);
    } else if (this.#simple[col] || type.kind === "json" || (b !== 0x7b && b !== 0x5b)) {
      next = skipValue(buf, i, end, 0);
      writeRawJson(buf, i, next, scratch);
    } else {
      const node = parseNode(buf, i, end, 0);
      next = node.e;
      writeText(valueText(buf, node, type), scratch);
    }
    this.#starts[col] = from;
    this.#ends[col] = scratch.length;
    return next;
  }
}
