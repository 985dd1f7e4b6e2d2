import { checkOptionNames } from "./check_option_names.ts";
/** Options of {@linkcode forEachBatch}. */
export interface ForEachBatchOptions {
  /** Batches processed at once (a sliding window, not gather-then-wait). Default 1. */
  concurrency?: number;
  /** Aborting it cancels the stream and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What {@linkcode forEachBatch} processed. */
export interface ForEachBatchResult {
  /** Batches handed to `fn`. */
  batches: number;
  /** Rows in those batches. */
  rows: number;
}

/**
 * Runs `fn` on every batch of a stream with up to `concurrency` calls in flight, reading the next
 * batch while earlier ones are processed. As soon as one call finishes, the next batch takes its
 * place (a sliding window). If `fn` throws, the stream is cancelled — which frees its database
 * connection — and, once the calls in flight have settled, the promise rejects with that error.
 *
 * At most `concurrency + 1` batches are held at once.
 *
 * @typeParam T The row type.
 * @param stream A batch stream, e.g. from `streamBatches()`.
 * @param fn Called with each batch and its 0-based index.
 * @param options `concurrency` (default 1) and `signal`.
 * @returns How many batches and rows were processed.
 * @throws {RangeError} When `concurrency` is not a positive integer.
 *
 * @example Upload batches, four at a time
 * ```ts
 * import { forEachBatch } from "./for_each_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const stream = ReadableStream.from([[1, 2], [3], [4, 5, 6]]);
 * const seen: number[] = [];
 * const result = await forEachBatch(stream, async (batch) => {
 *   seen.push(...batch);
 * }, { concurrency: 4 });
 * assert.deepEqual(result, { batches: 3, rows: 6 });
 * ```
 */
export async function forEachBatch<T>(
  stream: ReadableStream<T[]>,
  fn: (batch: T[], index: number) => void | Promise<void>,
  options: ForEachBatchOptions = {},
): Promise<ForEachBatchResult> {
  checkOptionNames(options, ["concurrency", "signal"], "forEachBatch()");
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot use concurrency as a batch window: it must be a positive integer, current value is ${concurrency}`,
    );
  }
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot use fn as a batch callback: current value is ${String(fn)}`);
  }
  const { signal } = options;
  const reader = stream.getReader();
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let cancelled: Promise<void> | undefined;
  let batches = 0;
  let rows = 0;

  const fail = (error: unknown): void => {
    if (failure) return;
    failure = { error };
    cancelled = reader.cancel(error).catch(() => {});
  };
  const onAbort = (): void => fail(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });

  try {
    while (!failure) {
      // Start the next read before waiting for a free slot, so fetching overlaps processing.
      const next = reader.read();
      while (inflight.size >= concurrency && !failure) await Promise.race(inflight);
      let result: ReadableStreamReadResult<T[]>;
      try {
        result = await next;
      } catch (error) {
        failure ??= { error };
        break;
      }
      if (result.done || failure) break;
      const batch = result.value;
      const index = batches++;
      rows += batch.length;
      const task: Promise<void> = Promise.resolve()
        .then(() => fn(batch, index))
        .then(() => {}, fail)
        .finally(() => inflight.delete(task));
      inflight.add(task);
    }
    await Promise.all(inflight);
    // Reject only once the stream's resources (the cursor's connection) are freed.
    await cancelled;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
  if (failure) throw failure.error;
  return { batches, rows };
}
