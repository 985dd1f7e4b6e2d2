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

/** `targetBatchBytes` of a format reading through `COPY`, unless the caller set one: 64 KiB. */
export const DEFAULT_COPY_TARGET_BATCH_BYTES: number = 64 * 1024;

/**
 * The sizing a format switches to once its source reads through `COPY`, for what the caller did
 * not set. A read there costs no round trip (the rows are already flowing), so a batch only sets
 * how much is held at once: {@linkcode DEFAULT_COPY_TARGET_BATCH_BYTES} (one output chunk) and no
 * minimum row count (ten 200 KB rows would be 2 MB a batch).
 *
 * @param options The caller's options.
 * @returns The sizing to switch to, if any.
 */
export function copySizing(
  options: StreamOptions | undefined,
): { targetBatchBytes?: number; minBatchRows?: number } | undefined {
  const sizing: { targetBatchBytes?: number; minBatchRows?: number } = {};
  if (options?.targetBatchBytes === undefined) {
    sizing.targetBatchBytes = DEFAULT_COPY_TARGET_BATCH_BYTES;
  }
  if (options?.minBatchRows === undefined) sizing.minBatchRows = 1;
  return sizing;
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
