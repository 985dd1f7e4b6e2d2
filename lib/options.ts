import type { IncludeMap } from "./load_includes.ts";
/** Default byte size a fetch aims for: 2 MiB, inside the 1–5 MB band that keeps round trips rare
 * and memory flat. */
export const DEFAULT_TARGET_BATCH_BYTES: number = 2 * 1024 * 1024;
/** Default size of the first fetch, small so the first row arrives fast. */
export const DEFAULT_FIRST_BATCH_ROWS = 100;
/** Default lower bound on a fetch. */
export const DEFAULT_MIN_BATCH_ROWS = 1;
/** Default upper bound on a fetch (2 MiB of 2-byte rows). */
export const DEFAULT_MAX_BATCH_ROWS = 1_000_000;
/** Default time a consumer may leave a stream unread before it is closed: 60 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** How a stream sizes its fetches. */
export interface BatchSizing {
  /** Bytes each fetch aims for, measured on the values as received. Default 2 MiB. */
  targetBatchBytes?: number;
  /** Rows in the first fetch. Default 100. */
  firstBatchRows?: number;
  /** Fewest rows a fetch asks for. Default 1. */
  minBatchRows?: number;
  /** Most rows a fetch asks for. Default 1,000,000. */
  maxBatchRows?: number;
}

/** What `onBatch` learns about each fetched batch. */
export interface BatchInfo {
  /** 0-based index of the batch. */
  index: number;
  /** Rows in the batch. */
  rows: number;
  /** Bytes of the batch's values as received from the server (text format). */
  bytes: number;
  /** Milliseconds the fetch took, from request to last row. */
  fetchMs: number;
  /** Rows the next fetch will ask for (0 when this was the last batch). */
  nextRows: number;
}

/** How a stream ended, as `onEnd` reports it. */
export type StreamEnding = "completed" | "cancelled" | "aborted" | "idle_timeout" | "error";

/** What `onEnd` learns about a stream once it ended and its connection was freed. */
export interface StreamSummary {
  /** How it ended: read to the end, cancelled by its consumer, aborted by the signal, stopped by the idle timeout, or failed. */
  ending: StreamEnding;
  /** What it failed with (`"error"`), or the abort's or cancel's reason. */
  error?: unknown;
  /** Rows fetched. */
  rows: number;
  /** Bytes of the rows' values as received from the server. */
  bytes: number;
  /** Batches fetched. */
  batches: number;
  /** Milliseconds from the stream's creation to its end, connection freed. */
  durationMs: number;
}

/** Options that read a result as several parts over several connections, in one snapshot. */
export interface PartitionOptions {
  /**
   * Read the result as this many parts, each over its own connection, all in one snapshot
   * exported by a leader transaction. A `{ table }` query is split into `ctid` page ranges; any
   * other query needs `partitionKey`. Default 1 (one cursor). postgres.js only; not with keyset
   * streams.
   */
  partitions?: number;
  /**
   * Split by ranges of this column of the result (a SQL name; numeric, date or timestamp) instead
   * of `ctid` pages. The ranges come from the column's `pg_stats` histogram when the column is a
   * plain table column with statistics, else from its `min`/`max` over the query (one extra
   * aggregate) split evenly. NULL keys go to the first part.
   */
  partitionKey?: string;
  /**
   * Emit the parts one after another in range order (page order, or key order between parts)
   * rather than rows as they arrive. Parts that are not yet due are still read, each up to
   * `partitionBufferBytes`. Default `false`.
   */
  ordered?: boolean;
  /**
   * With `ordered`: most bytes held for each part that is not yet due, before its reads pause
   * (a read in flight may overshoot by one batch). Default 8 MiB.
   */
  partitionBufferBytes?: number;
  /**
   * Called with the exported snapshot's id while the leader transaction still holds it, before
   * the parts start; a returned promise is awaited. Another session can read the same moment with
   * `BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '<id>'` meanwhile.
   */
  onSnapshot?: (snapshot: string) => void | Promise<void>;
}

/** Every option name of {@linkcode StreamOptions}, to refuse the ones that are not (typos). */
export const STREAM_OPTION_NAMES: readonly string[] = [
  "targetBatchBytes",
  "firstBatchRows",
  "minBatchRows",
  "maxBatchRows",
  "signal",
  "idleTimeoutMs",
  "statementTimeoutMs",
  "onBatch",
  "onEnd",
  "copy",
  "include",
  "strategy",
  "key",
  "direction",
  "after",
  "retries",
  "retryDelayMs",
  "onRetry",
  "partitions",
  "partitionKey",
  "ordered",
  "partitionBufferBytes",
  "onSnapshot",
];

/** Options shared by every stream function. */
export interface StreamOptions extends BatchSizing, PartitionOptions {
  /** Aborting it errors the stream with the signal's reason and frees the connection. */
  signal?: AbortSignal;
  /**
   * A consumer that does not read for this long makes the stream error with
   * `SluiceError("IDLE_TIMEOUT")` and free its connection. Default 60,000; 0 disables.
   */
  idleTimeoutMs?: number;
  /** `statement_timeout` for the stream's statements (`SET LOCAL`); unset keeps the server's. */
  statementTimeoutMs?: number;
  /** Called after each fetched batch, before it is handed to the consumer. */
  onBatch?: (info: BatchInfo) => void;
  /**
   * Called once when the stream has ended, however it ended, after its connection was freed: rows,
   * bytes, batches, duration and how it ended (for logs and metrics). An exception it throws is
   * ignored.
   */
  onEnd?: (summary: StreamSummary) => void;
  /**
   * Byte formats (CSV, NDJSON, JSON, SSE) only: read a query without parameters through
   * `COPY (query) TO STDOUT` instead of a cursor — `COPY`'s speed, same bytes, same cleanup.
   * Default `true` (`false` in the Hono adapter's `streamQuery`, where a cursor holds less memory
   * with many clients at once). The server then sends rows in 8 KiB blocks and runs ahead of the reader by the
   * socket buffers, held back by TCP; pass `false` for queries that produce rows slowly and whose
   * first rows should go out at once (a cursor's `FETCH` is answered at once, however small).
   * postgres.js only; ignored with `include` and keyset streams.
   */
  copy?: boolean;
  /**
   * Related rows to load for each batch and attach to its rows: one query per include (nested
   * ones too) per batch, never one per row. Their bytes count toward the batch's `bytes`. Not for
   * CSV. See {@linkcode IncludeMap}.
   */
  include?: IncludeMap;
  /**
   * How rows are read. `"cursor"` (default without `key`): one server-side cursor in one
   * transaction on a reserved connection. `"keyset"` (default with `key`): a series of short
   * statements, `… where (key) > (last key) order by key limit n`, no connection or transaction
   * held between them, resumable after a connection failure; needs `key`. postgres.js only.
   */
  strategy?: "cursor" | "keyset";
  /**
   * Keyset mode: the column(s) of the query's result to page by, as SQL names (before any
   * postgres.js column transform). Together they must be unique and never NULL (add the primary
   * key as a last, tie-breaking column); a NULL fails the stream with
   * `SluiceError("KEYSET_NULL_KEY")`, two equal keys in one batch with `"KEYSET_DUPLICATE_KEY"`.
   */
  key?: string | readonly string[];
  /** Keyset mode: `"asc"` (default) or `"desc"`, for every key column. */
  direction?: "asc" | "desc";
  /** Keyset mode: start after this key (one value per key column), e.g. a saved position. */
  after?: readonly unknown[];
  /**
   * Keyset mode: how many times a page is retried after a connection failure (backend killed,
   * pooler restarted), each after a backoff; then the stream fails with
   * `SluiceError("CONNECTION_LOST")`. Default 5; 0 disables. Cursor mode cannot resume.
   */
  retries?: number;
  /** Keyset mode: the first retry's backoff; each next one doubles it (capped at 5 s). Default 100. */
  retryDelayMs?: number;
  /** Keyset mode: called before each retry, after the backoff was chosen. */
  onRetry?: (info: RetryInfo) => void;
}

/** What `onRetry` learns about a keyset page that failed and is about to be retried. */
export interface RetryInfo {
  /** 1 for the first retry of this page. */
  attempt: number;
  /** The `retries` limit. */
  retries: number;
  /** Milliseconds waited before the retry. */
  delayMs: number;
  /** The connection error that made the page fail. */
  error: unknown;
}

/** {@linkcode StreamOptions} with defaults applied and checked. */
export interface ResolvedStreamOptions extends Required<BatchSizing> {
  signal: AbortSignal | undefined;
  idleTimeoutMs: number;
  statementTimeoutMs: number | undefined;
  onBatch: ((info: BatchInfo) => void) | undefined;
  onEnd: ((summary: StreamSummary) => void) | undefined;
}

function checkInteger(name: string, value: number, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot use ${name} as a batch option: current value is ${String(value)}`);
  }
  if (value < min) {
    throw new RangeError(
      `Cannot use ${name} as a batch option: it must be at least ${min}, current value is ${value}`,
    );
  }
}

/**
 * Applies defaults to batch sizing options and checks them.
 *
 * @param sizing The caller's options.
 * @returns Every field set.
 * @throws {TypeError | RangeError} When a field is not a positive integer or the bounds cross.
 *
 * @example Defaults
 * ```ts
 * import { resolveBatchSizing } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveBatchSizing({}).targetBatchBytes, 2 * 1024 * 1024);
 * ```
 */
export function resolveBatchSizing(sizing: BatchSizing): Required<BatchSizing> {
  const resolved = {
    targetBatchBytes: sizing.targetBatchBytes ?? DEFAULT_TARGET_BATCH_BYTES,
    firstBatchRows: sizing.firstBatchRows ?? DEFAULT_FIRST_BATCH_ROWS,
    minBatchRows: sizing.minBatchRows ?? DEFAULT_MIN_BATCH_ROWS,
    maxBatchRows: sizing.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS,
  };
  for (const [name, value] of Object.entries(resolved)) checkInteger(name, value, 1);
  if (resolved.minBatchRows > resolved.maxBatchRows) {
    throw new RangeError(
      `Cannot use minBatchRows as a batch option: it exceeds maxBatchRows (${resolved.maxBatchRows}), current value is ${resolved.minBatchRows}`,
    );
  }
  if (sizing.maxBatchRows !== undefined && resolved.firstBatchRows > resolved.maxBatchRows) {
    resolved.firstBatchRows = resolved.maxBatchRows;
  }
  return resolved;
}

/**
 * Applies defaults to {@linkcode StreamOptions} and checks them.
 *
 * @param options The caller's options.
 * @returns Every field set.
 * @throws {TypeError | RangeError} On a field of the wrong type or out of range.
 *
 * @example Idle timeout off
 * ```ts
 * import { resolveStreamOptions } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveStreamOptions({ idleTimeoutMs: 0 }).idleTimeoutMs, 0);
 * ```
 */
export function resolveStreamOptions(options: StreamOptions = {}): ResolvedStreamOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot use options as stream options: current value is ${String(options)}`,
    );
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  checkInteger("idleTimeoutMs", idleTimeoutMs, 0);
  if (options.statementTimeoutMs !== undefined) {
    checkInteger("statementTimeoutMs", options.statementTimeoutMs, 0);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot use signal as stream option: current value is ${String(options.signal)}`,
    );
  }
  if (options.copy !== undefined && typeof options.copy !== "boolean") {
    throw new TypeError(
      `Cannot use copy as stream option: current value is ${String(options.copy)}`,
    );
  }
  if (options.onEnd !== undefined && typeof options.onEnd !== "function") {
    throw new TypeError(
      `Cannot use onEnd as stream option: current value is ${String(options.onEnd)}`,
    );
  }
  if (options.onBatch !== undefined && typeof options.onBatch !== "function") {
    throw new TypeError(
      `Cannot use onBatch as stream option: current value is ${String(options.onBatch)}`,
    );
  }
  return {
    ...resolveBatchSizing(options),
    signal: options.signal,
    idleTimeoutMs,
    statementTimeoutMs: options.statementTimeoutMs,
    onBatch: options.onBatch,
    onEnd: options.onEnd,
  };
}
