/** Size of the chunks the byte streams emit: 64 KiB, the usual socket and file write size. */
export const CHUNK_BYTES = 64 * 1024;

// Up to this many bytes a copy loop beats `Uint8Array.prototype.set` (call overhead); above it,
// `set` (a native memcpy) wins by far.
const SMALL_COPY = 8;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

/** Options of {@linkcode ChunkWriter}. */
export interface ChunkWriterOptions {
  /**
   * Keep raw CR and LF out of the written text: each one written by `writeText` becomes a space,
   * and only {@linkcode ChunkWriter.newline} ends a line. Costs two native scans per chunk that
   * received such text instead of two per value (for NDJSON and SSE, whose JSON texts may hold raw
   * line breaks as whitespace from `json` columns); other writes must hold no CR or LF.
   */
  oneLine?: boolean;
}

/**
 * Coalesces many small writes into chunks of `size` bytes. Encoders write bytes; `take()` hands
 * out what was written so far as whole chunks plus one shorter tail, each backed by its own
 * buffer (never a view that later writes could touch), so a consumer may keep or transfer them.
 */
export class ChunkWriter {
  /** The chunk being filled. Encoders may write into it directly after {@linkcode reserve}. */
  buf: Uint8Array;
  /** Next free position in `buf`. */
  pos = 0;
  readonly #size: number;
  #full: Uint8Array[] = [];
  // Positions in `buf` of the line ends written by newline() (oneLine mode only).
  readonly #lineEnds: number[] | undefined;
  // oneLine mode: text that may hold raw CR/LF (writeText) went into the current chunk.
  #dirty = false;
  #inText = false;

  /**
   * Creates a writer.
   *
   * @param size Bytes per chunk.
   * @param options `oneLine`: only {@linkcode newline} may write a line break.
   */
  /** Bytes per chunk. */
  get size(): number {
    return this.#size;
  }

  /**
   * Whether a whole chunk is written and waiting to be taken: a source that can end its read at
   * any row (`COPY`) ends it here, so that {@linkcode take} hands out whole chunks and copies only
   * the few bytes written since.
   */
  get hasFullChunk(): boolean {
    return this.#full.length > 0;
  }

  /** Whether raw CR and LF written as text become spaces (see {@linkcode ChunkWriterOptions}). */
  get oneLine(): boolean {
    return this.#lineEnds !== undefined;
  }

  constructor(size: number = CHUNK_BYTES, options: ChunkWriterOptions = {}) {
    this.#size = size;
    this.buf = new Uint8Array(size);
    this.#lineEnds = options.oneLine ? [] : undefined;
  }

  /** Writes a line feed (in `oneLine` mode, the only way to write one). */
  newline(): void {
    if (this.pos === this.buf.length) this.#next();
    this.#lineEnds?.push(this.pos);
    this.buf[this.pos++] = LF;
  }

  /**
   * Makes sure `n` bytes (at most the chunk size) fit in `buf` after `pos`, starting a new chunk
   * if they do not.
   *
   * @param n Bytes about to be written.
   */
  reserve(n: number): void {
    if (this.buf.length - this.pos < n) this.#next();
  }

  /**
   * Writes one byte.
   *
   * @param byte The byte.
   */
  writeByte(byte: number): void {
    if (this.pos === this.buf.length) this.#next();
    this.buf[this.pos++] = byte;
  }

  /**
   * Writes bytes, splitting them across chunks if needed.
   *
   * @param bytes The bytes.
   */
  write(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n <= SMALL_COPY && this.buf.length - this.pos >= n) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) buf[p++] = bytes[i]!;
      this.pos = p;
      return;
    }
    let i = 0;
    while (i < n) {
      let room = this.buf.length - this.pos;
      if (room === 0) {
        this.#next();
        room = this.buf.length;
      }
      const take = room < n - i ? room : n - i;
      this.buf.set(i === 0 && take === n ? bytes : bytes.subarray(i, i + take), this.pos);
      this.pos += take;
      i += take;
    }
  }

  /**
   * Writes text that may hold raw CR or LF, which become spaces in `oneLine` mode (everything else
   * written is taken to hold none but those of {@linkcode newline}).
   *
   * @param bytes The bytes.
   */
  writeText(bytes: Uint8Array): void {
    this.#dirty = true;
    this.#inText = true;
    this.write(bytes);
    this.#inText = false;
  }

  /**
   * Returns the chunks written since the last call: full chunks as they are, the partly filled
   * one as a copy (its buffer is reused) — or, with `holdPart` and at least one full chunk to
   * return, left where it is for a later call.
   *
   * @param holdPart Keep a partly filled chunk back when full chunks go out.
   * @returns The chunks, possibly none.
   */
  take(holdPart = false): Uint8Array[] {
    const out = this.#full;
    this.#full = [];
    if (holdPart && out.length > 0) return out;
    this.#seal();
    if (this.pos > 0) {
      out.push(this.buf.slice(0, this.pos));
      this.pos = 0;
    }
    return out;
  }

  /**
   * Enqueues the chunks written since the last call (see {@linkcode take}).
   *
   * @param controller The stream's controller.
   * @param holdPart Keep a partly filled chunk back when full chunks go out.
   */
  flushTo(controller: ReadableStreamDefaultController<Uint8Array>, holdPart = false): void {
    for (const chunk of this.take(holdPart)) controller.enqueue(chunk);
  }

  // oneLine mode: turns every CR/LF in the chunk into a space, then puts back the line ends.
  #seal(): void {
    const ends = this.#lineEnds;
    if (ends === undefined || this.pos === 0) return;
    if (!this.#dirty) {
      ends.length = 0;
      return;
    }
    // Text split across chunks: the next chunk gets the rest of it.
    this.#dirty = this.#inText;
    const text = this.buf.subarray(0, this.pos);
    for (let i = text.indexOf(LF); i !== -1; i = text.indexOf(LF, i + 1)) text[i] = SPACE;
    for (let i = text.indexOf(CR); i !== -1; i = text.indexOf(CR, i + 1)) text[i] = SPACE;
    for (let i = 0; i < ends.length; i++) text[ends[i]!] = LF;
    ends.length = 0;
  }

  #next(): void {
    this.#seal();
    // The old buffer is never written again, so a view of it is safe to hand out.
    if (this.pos > 0) this.#full.push(this.buf.subarray(0, this.pos));
    this.buf = new Uint8Array(this.#size);
    this.pos = 0;
  }
}
