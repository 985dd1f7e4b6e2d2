import { SluiceError } from "../errors.ts";
import { ByteSink } from "./_byte_sink.ts";
import { quoteName } from "./_target.ts";

const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_SEEN = 3;
const AFTER_CR = 4;

/**
 * Checks a CSV body as it streams past, without copying it: RFC 4180 quoting (a quote only opens a
 * field; inside quotes `""` is a quote; a closing quote is followed by `,` or a line end), the
 * same number of fields on every line as in the header, and no `\.` line (PostgreSQL's end-of-data
 * marker). It reads the header's column names and counts records and physical lines, so errors
 * name the line — the same line numbers PostgreSQL's `COPY … (FORMAT csv, HEADER)` reports. A
 * record (header included) longer than `maxLineBytes` fails as soon as it grows past it.
 */
export class CsvScanner {
  /** The header's column names, once its line ended. */
  header: string[] | undefined;
  /** Data records seen (complete lines after the header). */
  records = 0;
  /** Bytes of data records seen so far (header excluded). */
  recordBytes = 0;
  #line = 1;
  #state = FIELD_START;
  #field = 0;
  #fieldLine = 1;
  #dirty = false;
  // 0: field 0 is unquoted and empty so far; 1: it is "\"; 2: it is "\."; -1: anything else.
  #marker = 0;
  readonly #name = new ByteSink(256);
  #names: string[] = [];
  readonly #label: string;
  readonly #maxLineBytes: number;
  // The current record: its first line, and its bytes in earlier chunks.
  #recordLine = 1;
  #recordBytes = 0;

  /**
   * Creates a scanner.
   *
   * @param label What the body is called in error messages.
   * @param maxLineBytes The longest record accepted, in bytes.
   */
  constructor(label = "the CSV body", maxLineBytes = Infinity) {
    this.#label = label;
    this.#maxLineBytes = maxLineBytes;
  }

  #checkLength(bytes: number): void {
    if (bytes > this.#maxLineBytes) {
      throw new SluiceError(
        "LINE_TOO_LONG",
        `Cannot ingest line ${this.#recordLine} of ${this.#label}: it is longer than maxLineBytes (${this.#maxLineBytes} bytes)`,
      );
    }
  }

  #fail(what: string, line = this.#line, field = this.#field): never {
    const name = this.header?.[field] ?? this.#names[field];
    const column = name === undefined ? `field ${field + 1}` : `column ${quoteName(name)}`;
    throw new SluiceError(
      "BAD_INPUT",
      `Cannot ingest line ${line} of ${this.#label}, ${column}: ${what}`,
    );
  }

  #endField(): void {
    if (this.header === undefined) {
      this.#names.push(new TextDecoder().decode(this.#name.take()));
    } else if (this.#field + 1 > this.header.length) {
      this.#fail(
        `more fields than the ${this.header.length} of the header`,
        this.#line,
        this.#field + 1,
      );
    }
    this.#field++;
  }

  #endRecord(): void {
    if (this.#field === 0 && this.#marker === 2) {
      this.#fail('a line holding only \\. ends the data in PostgreSQL; quote it ("\\.")');
    }
    this.#endField();
    if (this.header === undefined) {
      this.header = this.#names;
      this.#names = [];
    } else {
      if (this.#field !== this.header.length) {
        this.#fail(
          `${this.#field} field${
            this.#field === 1 ? "" : "s"
          }, the header has ${this.header.length}`,
          this.#line,
          this.#field - 1,
        );
      }
      this.records++;
    }
    this.#field = 0;
    this.#marker = 0;
    this.#dirty = false;
  }

  /**
   * Checks the next chunk of the body.
   *
   * @param chunk Bytes, continuing the previous chunk.
   * @throws {SluiceError} `BAD_INPUT` naming the line and the column.
   */
  scan(chunk: Uint8Array): void {
    const n = chunk.length;
    let state = this.#state;
    let collect = this.header === undefined;
    let bodyStart = collect ? n : 0; // where data records start in this chunk
    let start = 0; // start of the current field's bytes in this chunk, while collecting the header
    let recordStart = 0; // where the current record starts in this chunk
    let i = 0;
    const endRecord = () => {
      this.#checkLength(this.#recordBytes + i + 1 - recordStart);
      this.#endRecord();
      this.#line++;
      this.#recordLine = this.#line;
      this.#recordBytes = 0;
      recordStart = i + 1;
      state = FIELD_START;
      if (collect && this.header !== undefined) {
        collect = false;
        bodyStart = i + 1;
      }
    };
    try {
      for (; i < n; i++) {
        const c = chunk[i]!;
        switch (state) {
          case FIELD_START:
            this.#dirty = true;
            if (c === QUOTE) {
              state = QUOTED;
              this.#fieldLine = this.#line;
              this.#marker = -1;
              start = i + 1;
            } else if (c === COMMA) {
              this.#marker = -1;
              this.#endField();
            } else if (c === LF) {
              endRecord();
            } else if (c === CR) {
              state = AFTER_CR;
            } else {
              state = UNQUOTED;
              start = i;
              this.#marker = this.#field === 0 ? 0 : -1;
              i--; // scan this byte again as part of the unquoted field
            }
            break;
          case UNQUOTED: {
            let j = i;
            let marker = this.#marker;
            for (; j < n; j++) {
              const d = chunk[j]!;
              if (d === COMMA || d === LF || d === CR || d === QUOTE) break;
              if (marker >= 0) {
                marker = marker === 0 && d === 0x5c ? 1 : marker === 1 && d === 0x2e ? 2 : -1;
              }
            }
            this.#marker = marker;
            if (collect) this.#name.append(chunk, start, j);
            i = j;
            if (j === n) break;
            const d = chunk[j];
            if (d === COMMA) {
              this.#marker = -1;
              this.#endField();
              state = FIELD_START;
            } else if (d === LF) {
              endRecord();
            } else if (d === CR) {
              state = AFTER_CR;
            } else {
              this.#fail("a quote inside an unquoted field (quote the whole field)");
            }
            break;
          }
          case QUOTED: {
            let j = i;
            for (; j < n; j++) {
              const d = chunk[j]!;
              if (d === QUOTE) break;
              if (d === LF) this.#line++;
            }
            if (collect) this.#name.append(chunk, start, j);
            i = j;
            if (j < n) state = QUOTE_SEEN;
            break;
          }
          case QUOTE_SEEN:
            if (c === QUOTE) {
              state = QUOTED;
              start = i; // keep one quote of the pair
            } else if (c === COMMA) {
              this.#endField();
              state = FIELD_START;
            } else if (c === LF) {
              endRecord();
            } else if (c === CR) {
              state = AFTER_CR;
            } else {
              this.#fail("a closing quote must be followed by a comma or a line end");
            }
            break;
          case AFTER_CR:
            if (c !== LF) {
              this.#fail("a carriage return outside quotes not followed by a line feed");
            }
            endRecord();
            break;
        }
      }
    } finally {
      this.#state = state;
    }
    this.#recordBytes += n - recordStart;
    this.#checkLength(this.#recordBytes);
    this.recordBytes += n - Math.min(bodyStart, n);
  }

  /**
   * Checks the end of the body: an open quoted field is an error; a last line without `\n` counts.
   *
   * @throws {SluiceError} `BAD_INPUT` for an unterminated quoted field.
   */
  end(): void {
    if (this.#state === QUOTED) {
      this.#fail("quoted field not closed before the end of the body", this.#fieldLine);
    }
    if (this.#dirty || this.#field > 0 || this.#state !== FIELD_START) this.#endRecord();
    this.#state = FIELD_START;
  }

  /** The current physical line (1-based). */
  get line(): number {
    return this.#line;
  }
}
