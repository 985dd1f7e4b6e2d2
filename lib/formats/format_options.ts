import type { StreamOptions } from "../options.ts";

/**
 * Default `targetBatchBytes` of the byte-stream formats (NDJSON, CSV, JSON array, SSE): 64 KiB,
 * one output chunk, not the 2 MiB of row streams. A format writes each row out as it arrives, so a
 * larger batch buys no throughput, only memory — the encoded batch waits in the stream's queue
 * (bench/RESULTS.md). Pass `targetBatchBytes` to override.
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

/** What {@linkcode copySizing} changes. */
export interface CopySizing {
  firstBatchRows?: number;
  minBatchRows?: number;
  targetBatchBytes?: number;
}

/**
 * The sizing a format switches to once its source reads through `COPY`, for what the caller did
 * not set. A read there costs no round trip (the rows are already flowing), so a batch of rows
 * only delays and holds bytes:
 *
 * - the first batch is one row, so the first byte leaves as soon as a row arrived (ten wide rows
 *   would all be encoded first, by code the JIT has not compiled yet in a fresh process);
 * - there is no minimum row count (the cursor's would only hold wide rows in memory);
 * - a batch ends once a whole 64 KiB output chunk is written (see {@linkcode endsAtFullChunk});
 *   the byte target only caps it, at twice the default, so that the chunk comes first: the
 *   stream then hands out whole chunks instead of copying a part-filled one after every batch.
 *
 * Narrow rows reach full batches within three reads (1 → 32 → 1,024 rows).
 *
 * @param options The caller's options.
 * @returns The sizing to switch to, if any.
 */
export function copySizing(options: StreamOptions | undefined): CopySizing | undefined {
  const sizing: CopySizing = {};
  if (options?.firstBatchRows === undefined) sizing.firstBatchRows = 1;
  if (options?.minBatchRows === undefined) sizing.minBatchRows = 1;
  if (endsAtFullChunk(options)) sizing.targetBatchBytes = 2 * DEFAULT_FORMAT_TARGET_BATCH_BYTES;
  return Object.keys(sizing).length > 0 ? sizing : undefined;
}

/**
 * Whether a format's `COPY` reads end at the first full output chunk: unless the caller chose
 * `targetBatchBytes` (then batches follow it, e.g. for larger SSE events).
 *
 * @param options The caller's options.
 * @returns `true` when batches are one output chunk each.
 */
export function endsAtFullChunk(options: StreamOptions | undefined): boolean {
  return options?.targetBatchBytes === undefined;
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
