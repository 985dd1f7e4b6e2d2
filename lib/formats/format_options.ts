import type { StreamOptions } from "../options.ts";

/**
 * Default `targetBatchBytes` of the byte-stream formats (NDJSON, CSV, JSON array, SSE): 64 KiB,
 * one output chunk, not the 2 MiB of row streams. A format writes each row out as it arrives, so a
 * larger batch buys no throughput, only memory — the encoded batch waits in the stream's queue
 * (with 32 Deno clients at once: 280–310 MiB server RSS at 256 KiB, 227–230 MiB at 64 KiB, and no
 * slower; see bench/RESULTS.md). Pass `targetBatchBytes` to override.
 */
export const DEFAULT_FORMAT_TARGET_BATCH_BYTES: number = 64 * 1024;

/**
 * Default `firstBatchRows` of the byte-stream formats: 10, not 100, so that the first bytes leave
 * within milliseconds even when rows are hundreds of kilobytes (100 such rows would be tens of
 * megabytes before the first byte). The tuner sizes the following fetches from what it saw.
 */
export const DEFAULT_FORMAT_FIRST_BATCH_ROWS = 10;

/**
 * Default `minBatchRows` of the byte-stream formats through a cursor: 10. With rows of hundreds of
 * kilobytes the 64 KiB target would mean one row per fetch, and the stream would wait on a round
 * trip per row; ten rows keep round trips rare at a few megabytes a batch. (Through `COPY` a read
 * costs no round trip, and the minimum is 1: see {@linkcode copySizing}.)
 */
export const DEFAULT_FORMAT_MIN_BATCH_ROWS = 10;

/**
 * The sizing a format switches to once its source reads through `COPY`, for what the caller did
 * not set: a first batch of one row and no minimum row count. A read there costs no round trip
 * (the rows are already flowing), so a batch of rows only delays and holds bytes: the first row
 * goes out as soon as it arrives (the cursor's first batch of ten 200 KB rows meant 2 MB encoded,
 * in a fresh process by code the JIT had not compiled yet, before the first byte: 45–57 ms), and
 * the cursor's minimum of {@linkcode DEFAULT_FORMAT_MIN_BATCH_ROWS} rows would only hold wide rows
 * in memory. Narrow rows still reach the byte target within three batches (1 → 32 → 1,024 rows).
 *
 * @param options The caller's options.
 * @returns The sizing to switch to, if any.
 */
export function copySizing(
  options: StreamOptions | undefined,
): { firstBatchRows?: 1; minBatchRows?: 1 } | undefined {
  const sizing: { firstBatchRows?: 1; minBatchRows?: 1 } = {};
  if (options?.firstBatchRows === undefined) sizing.firstBatchRows = 1;
  if (options?.minBatchRows === undefined) sizing.minBatchRows = 1;
  return sizing.firstBatchRows || sizing.minBatchRows ? sizing : undefined;
}

/**
 * Applies the formats' defaults to stream options.
 *
 * @param options The caller's options.
 * @returns The options with `targetBatchBytes`, `firstBatchRows` and `minBatchRows` set.
 */
export function withFormatDefaults<T extends StreamOptions>(
  options: T | undefined,
): T & { targetBatchBytes: number; firstBatchRows: number; minBatchRows: number } {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot use options as stream options: current value is ${String(options)}`,
    );
  }
  return {
    ...options,
    targetBatchBytes: options?.targetBatchBytes ?? DEFAULT_FORMAT_TARGET_BATCH_BYTES,
    firstBatchRows: options?.firstBatchRows ??
      Math.min(DEFAULT_FORMAT_FIRST_BATCH_ROWS, options?.maxBatchRows ?? Infinity),
    minBatchRows: options?.minBatchRows ??
      Math.min(DEFAULT_FORMAT_MIN_BATCH_ROWS, options?.maxBatchRows ?? Infinity),
  } as T & { targetBatchBytes: number; firstBatchRows: number; minBatchRows: number };
}
