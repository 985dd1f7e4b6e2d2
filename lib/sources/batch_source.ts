/** One fetch's worth of rows, with the bytes they weighed on the wire. */
export interface SourceBatch<T> {
  /** The rows; fewer than requested means the source is exhausted. */
  rows: T[];
  /** Bytes of the rows' values as received from the server (drives the batch tuner). */
  bytes: number;
  /**
   * How many rows the batch had, when they were handed to a row sink as they arrived instead of
   * being returned (`rows` is then empty). Defaults to `rows.length`.
   */
  count?: number;
  /**
   * Whether the source is exhausted. Defaults to `count < rows asked for`; a source whose reads
   * may end early (a COPY read that stops at a full output chunk) says it here.
   */
  done?: boolean;
}

/**
 * A way of reading rows: a driver × a strategy (cursor, keyset …). The stream engine owns the
 * life cycle: it calls `fetch` one at a time, never concurrently, and `close` exactly once.
 */
export interface BatchSource<T> {
  /**
   * Fetches up to `rows` rows. A batch shorter than `rows` ends the stream, unless it says
   * `done: false`.
   *
   * @param rows How many rows to ask for (≥ 1).
   */
  fetch(rows: number): Promise<SourceBatch<T>>;
  /**
   * Ends the read and frees everything the source holds (cursor, transaction, connection).
   * `error` is set when the stream failed or was cancelled, so the source can roll back and skip
   * talking to a connection that is known to be dead. Must not throw.
   *
   * @param error Why the stream ended early; `undefined` after the last batch.
   */
  close(error?: unknown): Promise<void>;
  /** Asks the server to stop a `fetch` in flight (abort signal, cancel). Optional. */
  interrupt?(): void;
}

/**
 * Opens a source; called lazily on the consumer's first read. `signal` aborts when the stream ends
 * (cancel, abort, idle timeout) before the source is open: the source should then stop what it is
 * waiting on and reject, freeing what it holds. A source that opens anyway is closed at once.
 */
export type OpenBatchSource<T> = (signal: AbortSignal) => Promise<BatchSource<T>>;
