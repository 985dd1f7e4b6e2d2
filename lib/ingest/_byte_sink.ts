/** A growable byte buffer that hands its contents over without copying. */
export class ByteSink {
  /** The buffer; valid bytes are `[0, length)`. */
  bytes: Uint8Array;
  /** Bytes written. */
  length = 0;
  readonly #initial: number;

  /**
   * Creates a sink.
   *
   * @param initial Initial capacity in bytes.
   */
  constructor(initial = 64 * 1024) {
    this.#initial = initial;
    this.bytes = new Uint8Array(initial);
  }

  /**
   * Makes room for `n` more bytes.
   *
   * @param n Bytes about to be written.
   */
  reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /**
   * Appends `src[start, end)`.
   *
   * @param src Source bytes.
   * @param start First byte.
   * @param end Byte after the last.
   */
  append(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.reserve(n);
    if (n < 16) {
      const b = this.bytes;
      let o = this.length;
      for (let i = start; i < end; i++) b[o++] = src[i]!;
    } else {
      this.bytes.set(src.subarray(start, end), this.length);
    }
    this.length += n;
  }

  /**
   * Returns the bytes written and starts a new buffer (the returned view is never written again,
   * so it can be queued by a stream that copies later).
   *
   * @returns The bytes.
   */
  take(): Uint8Array {
    const out = this.bytes.subarray(0, this.length);
    this.bytes = new Uint8Array(this.#initial);
    this.length = 0;
    return out;
  }
}
