/**
 * The parts of the Node `Readable` postgres.js hands out for `COPY … TO STDOUT` (`.readable()`)
 * that {@linkcode CopyReader} uses.
 */
export interface CopyReadable {
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", fn: () => void): unknown;
  on(event: "error", fn: (error: unknown) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  /** postgres.js's `read()`: resumes the connection's socket. */
  _read?(size?: number): void;
}

const LF = 0x0a;

/**
 * Takes one COPY row: `bytes[start, end)`. The bytes are the driver's, valid only during the call
 * (passing a range spares a view per row, which Deno's Buffer polyfill makes costly). Returning
 * `true` ends the current read after this row (the sink has a full output chunk to hand out).
 */
export type RowSink = (bytes: Uint8Array, start: number, end: number) => boolean | void;
const indexOf = Uint8Array.prototype.indexOf;

/**
 * Reads a `COPY … TO STDOUT` stream on demand, handing each row to `onRow` as it arrives (so the
 * driver's buffers die young and nothing is queued): the stream flows while a read wants rows and
 * is paused otherwise, so the server is held back by TCP once the socket buffers fill.
 *
 * PostgreSQL sends one CopyData message per row (the protocol says "always one per row"), and
 * postgres.js pushes each message as one chunk, so a chunk is a row. In `"lines"` mode (COPY text
 * format, where a raw line feed only ends a row) a chunk ending in a line feed is taken as a row
 * without a scan, and any other chunk is split on line feeds, so rows stay exact whatever the
 * chunking; in `"chunks"` mode (CSV, whose quoted values may hold line feeds) chunks are taken as
 * rows.
 */
export class CopyReader {
  readonly #readable: CopyReadable;
  readonly #lines: boolean;
  readonly #onRow: RowSink;
  #count = 0;
  #bytes = 0;
  #want = 0;
  // The sink asked to end the current read.
  #enough = false;
  #partial: Uint8Array | undefined;
  #ended = false;
  #error: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  #discard = false;
  #finished: Promise<void>;

  /**
   * @param readable The COPY stream (paused here until the first read).
   * @param mode `"lines"` for COPY text format, `"chunks"` for CSV.
   * @param onRow Called with each row (a text line without its line feed, or a CSV row as sent).
   */
  constructor(readable: CopyReadable, mode: "lines" | "chunks", onRow: RowSink) {
    this.#readable = readable;
    this.#lines = mode === "lines";
    this.#onRow = onRow;
    readable.pause();
    let settle: () => void;
    this.#finished = new Promise((r) => settle = r);
    const finish = () => {
      this.#ended = true;
      // postgres.js 3.4.9 pauses the socket when the stream's buffer is full and resumes it only
      // from the stream's read(), which is never called again once the stream ended: the
      // connection's next answer (our COMMIT/ROLLBACK) would never be read. Resume it here.
      try {
        readable._read?.();
      } catch { /* the connection is gone */ }
      settle();
      this.#wake?.();
    };
    readable.on("data", (chunk) => this.#onData(chunk));
    readable.on("end", finish);
    readable.on("close", finish);
    readable.on("error", (error) => {
      this.#error ??= { error };
      finish();
    });
  }

  #onData(chunk: Uint8Array): void {
    if (this.#discard) return;
    const onRow = this.#onRow;
    if (!this.#lines) {
      if (onRow(chunk, 0, chunk.length) === true) this.#enough = true;
      this.#count++;
      this.#bytes += chunk.length;
    } else if (this.#partial === undefined && chunk[chunk.length - 1] === LF) {
      // The usual chunk: one CopyData message, which the protocol makes exactly one row ("always
      // one per row"), and a raw line feed only ends a row in text format — no scan needed.
      if (onRow(chunk, 0, chunk.length - 1) === true) this.#enough = true;
      this.#count++;
      this.#bytes += chunk.length;
    } else {
      this.#bytes += chunk.length;
      let start = 0;
      let end = indexOf.call(chunk, LF);
      if (this.#partial !== undefined && end !== -1) {
        const line = concat(this.#partial, chunk.subarray(0, end));
        this.#partial = undefined;
        if (onRow(line, 0, line.length) === true) this.#enough = true;
        this.#count++;
        start = end + 1;
        end = start < chunk.length ? indexOf.call(chunk, LF, start) : -1;
      }
      while (end !== -1) {
        if (onRow(chunk, start, end) === true) this.#enough = true;
        this.#count++;
        start = end + 1;
        end = start < chunk.length ? indexOf.call(chunk, LF, start) : -1;
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        this.#partial = this.#partial ? concat(this.#partial, rest) : rest.slice();
      }
    }
    if (this.#count >= this.#want || this.#enough) {
      this.#readable.pause();
      this.#wake?.();
    }
  }

  /**
   * Lets up to `n` more rows through to `onRow`: fewer when the sink asked to end the read or the
   * COPY ended, more when a chunk held several rows.
   *
   * @param n Rows wanted (≥ 1).
   * @returns How many rows went through, their bytes on the wire, and whether the COPY is over
   *   (every row was handed out).
   * @throws What the COPY failed with.
   */
  async read(n: number): Promise<{ rows: never[]; count: number; bytes: number; done: boolean }> {
    this.#want = n;
    this.#enough = false;
    if (this.#count < n && !this.#ended) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#readable.resume();
      });
      this.#wake = undefined;
    }
    if (this.#error) throw this.#error.error;
    const batch = { rows: [], count: this.#count, bytes: this.#bytes, done: this.#ended };
    this.#count = 0;
    this.#bytes = 0;
    return batch;
  }

  /** True once the COPY stream ended, failed or closed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** What the stream failed with, if it did. */
  get error(): unknown {
    return this.#error?.error;
  }

  /**
   * Reads and drops the rest of the stream (after a cancel request, so the server can reach the
   * error it ends with), resolving once it ended or failed.
   */
  drain(): Promise<void> {
    this.#discard = true;
    this.#partial = undefined;
    if (!this.#ended) this.#readable.resume();
    return this.#finished;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
