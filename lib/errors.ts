/**
 * What went wrong, as a stable string callers can switch on.
 *
 * - `IDLE_TIMEOUT`: the consumer did not read for `idleTimeoutMs`; the stream was closed.
 * - `POOL_BUSY`: no database connection (or stream slot) was free; retry later.
 * - `CURSOR_LOST`: the server-side cursor vanished between fetches (typically a transaction-mode
 *   pooler such as PgBouncer); use `strategy: "keyset"`.
 * - `CONNECTION_LOST`: the connection failed and the stream could not be resumed.
 * - `KEYSET_NULL_KEY`: a keyset stream met a row whose key is NULL (keys must be NOT NULL).
 * - `KEYSET_DUPLICATE_KEY`: a keyset stream met two rows with the same key (keys must be unique;
 *   add a tie-breaking column such as the primary key).
 * - `SNAPSHOT_NOT_SHAREABLE`: a partitioned stream cannot share its snapshot between connections
 *   (they go through a pooler such as PgBouncer); connect directly or drop `partitions`.
 * - `PARTITIONS_UNSUPPORTED`: a partitioned stream's relation or `partitionKey` cannot be split
 *   (not a plain table; no such column; a key that is no number, date or timestamp).
 * - `BAD_INPUT`: data given to sluice (a token, an ingest body) could not be used.
 * - `LINE_TOO_LONG`: an ingest body has a line longer than `maxLineBytes`.
 * - `INTERNAL`: a bug in sluice; please report it.
 */
export type SluiceErrorCode =
  | "IDLE_TIMEOUT"
  | "POOL_BUSY"
  | "CURSOR_LOST"
  | "CONNECTION_LOST"
  | "KEYSET_NULL_KEY"
  | "KEYSET_DUPLICATE_KEY"
  | "SNAPSHOT_NOT_SHAREABLE"
  | "PARTITIONS_UNSUPPORTED"
  | "BAD_INPUT"
  | "LINE_TOO_LONG"
  | "INTERNAL";

/** Options for {@linkcode SluiceError}. */
export interface SluiceErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The one error class sluice throws for runtime failures a caller may handle. PostgreSQL's own
 * errors are passed through unchanged; bad arguments throw `TypeError`/`RangeError`.
 *
 * @example Handle a consumer that stopped reading
 * ```ts
 * import { SluiceError } from "./errors.ts";
 *
 * const error = new SluiceError("IDLE_TIMEOUT", "Cannot keep the stream open: idle for 60000 ms");
 * if (error instanceof SluiceError && error.code === "IDLE_TIMEOUT") {
 *   console.log(error.message);
 * }
 * ```
 */
export class SluiceError extends Error {
  /** What went wrong; see {@linkcode SluiceErrorCode}. */
  readonly code: SluiceErrorCode;

  /**
   * Creates an error with a code.
   *
   * @param code What went wrong.
   * @param message A sentence for humans.
   * @param options `cause`: the underlying error.
   */
  constructor(code: SluiceErrorCode, message: string, options?: SluiceErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SluiceError";
    this.code = code;
  }
}

/**
 * True for PostgreSQL's own 08P01 (protocol violation): a fault in what the client sent, such as a
 * Bind with the wrong number of parameters, which fails the same way on every connection and is
 * no lost connection. PgBouncer reports its own connection failures with the same code; the
 * server's errors name the routine that raised them, PgBouncer's never do.
 *
 * @param error Any error.
 * @returns Whether it is the server's protocol violation.
 */
export function isProtocolViolation(error: unknown): boolean {
  const { code, routine } = (error ?? {}) as { code?: unknown; routine?: unknown };
  return code === "08P01" && typeof routine === "string";
}
