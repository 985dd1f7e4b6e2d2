import { resolveBatchSizing } from "./options.ts";
import type { BatchSizing } from "./options.ts";

/** Most a fetch may grow over the previous one (32×: 100 → 3,200 → 102,400 rows). */
export const MAX_GROWTH = 32;

/**
 * Chooses how many rows to fetch next from the bytes seen so far.
 *
 * The first fetch asks for `firstBatchRows` (so the first row arrives quickly); every later fetch
 * asks for `targetBatchBytes / (bytes per row of the last batch)`, clamped to
 * `[minBatchRows, maxBatchRows]`. Using only the last batch (not a long-run average) is what lets
 * the size re-converge within one batch when row widths change mid-stream; a row wider than the
 * target makes the next fetch a single row. Growth is capped at {@linkcode MAX_GROWTH}× the last
 * batch's rows, because a small first batch is a poor sample (ids 1–100 are shorter than the
 * millionth): shrinking is immediate, growing takes at most a few batches.
 *
 * @example Narrow rows grow the batch, wide rows shrink it
 * ```ts
 * import { BatchTuner } from "./batch_tuner.ts";
 * import assert from "node:assert/strict";
 *
 * const tuner = new BatchTuner({ targetBatchBytes: 1000 });
 * assert.equal(tuner.nextRows, 100);
 * assert.equal(tuner.record(100, 500), 200); // 5 bytes a row → 200 rows for 1000 bytes
 * assert.equal(tuner.record(200, 400_000), 1); // 2000 bytes a row → one at a time
 * ```
 */
export class BatchTuner {
  readonly #sizing: Required<BatchSizing>;
  #nextRows: number;

  /**
   * Creates a tuner.
   *
   * @param sizing Target bytes and row bounds; unset fields take the defaults of `StreamOptions`.
   */
  constructor(sizing: BatchSizing = {}) {
    this.#sizing = resolveBatchSizing(sizing);
    this.#nextRows = this.#sizing.firstBatchRows;
  }

  /** How many rows the next fetch should ask for. */
  get nextRows(): number {
    return this.#nextRows;
  }

  /**
   * Records a fetched batch and returns the next fetch size.
   *
   * @param rows Rows in the batch.
   * @param bytes Bytes of the batch's values as received.
   * @returns The number of rows to fetch next.
   */
  record(rows: number, bytes: number): number {
    if (rows > 0) {
      const { targetBatchBytes, minBatchRows, maxBatchRows } = this.#sizing;
      // A batch of NULLs weighs 0 bytes; count at least one byte a row so the size stays finite.
      const perRow = Math.max(bytes / rows, 1);
      const wanted = Math.min(Math.round(targetBatchBytes / perRow), rows * MAX_GROWTH);
      this.#nextRows = Math.min(maxBatchRows, Math.max(minBatchRows, wanted, 1));
    }
    return this.#nextRows;
  }
}
