import type { StreamOptions } from "../options.ts";

/**
 * Default `targetBatchBytes` of the byte-stream formats (NDJSON, CSV, JSON array, SSE): 256 KiB,
 * not the 2 MiB of row streams. A format turns each batch into bytes at once, so a larger batch
 * buys no throughput, only memory: the driver's row objects and the encoded bytes of the whole
 * batch are alive together (see bench/RESULTS.md). Pass `targetBatchBytes` to override.
 */
export const DEFAULT_FORMAT_TARGET_BATCH_BYTES: number = 256 * 1024;

/**
 * Default `firstBatchRows` of the byte-stream formats: 10, not 100, so that the first bytes leave
 * within milliseconds even when rows are hundreds of kilobytes (100 such rows would be tens of
 * megabytes before the first byte). The tuner sizes the following fetches from what it saw.
 */
export const DEFAULT_FORMAT_FIRST_BATCH_ROWS = 10;

/**
 * Default `minBatchRows` of the byte-stream formats: 10. With rows of hundreds of kilobytes the
 * 256 KiB target would mean one row per fetch, and the stream would wait on a round trip per row;
 * ten rows keep round trips rare at a few megabytes a batch.
 */
export const DEFAULT_FORMAT_MIN_BATCH_ROWS = 10;

/**
 * The sizing a format uses once its source reads through `COPY`: a read there costs no round
 * trip, so the minimum of {@linkcode DEFAULT_FORMAT_MIN_BATCH_ROWS} rows only holds wide rows in
 * memory (ten 200 KB rows, 2 MB a batch); one row at a time is enough — unless the caller set a
 * minimum.
 *
 * @param options The caller's options.
 * @returns The sizing to switch to, if any.
 */
export function copySizing(options: StreamOptions | undefined): { minBatchRows: 1 } | undefined {
  return options?.minBatchRows === undefined ? { minBatchRows: 1 } : undefined;
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
