/** Default most bytes an `ordered` partitioned stream holds for each part that is not yet due: 8 MiB. */
export const DEFAULT_PARTITION_BUFFER_BYTES: number = 8 * 1024 * 1024;

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

/** {@linkcode PartitionOptions} checked, defaults applied. */
export interface ResolvedPartitionOptions {
  partitions: number;
  partitionKey: string | undefined;
  ordered: boolean;
  partitionBufferBytes: number;
  onSnapshot: ((snapshot: string) => void | Promise<void>) | undefined;
}

function checkCount(name: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot use ${name} as a partition option: current value is ${value}`);
  }
  if (value < min) {
    throw new RangeError(
      `Cannot use ${name} as a partition option: it must be at least ${min}, current value is ${value}`,
    );
  }
}

/**
 * Checks the partition options and applies their defaults.
 *
 * @param options The stream options.
 * @returns The partition options resolved.
 * @throws {TypeError | RangeError} On a field of the wrong type or out of range, or `partitions`
 *   together with keyset options.
 *
 * @example One part by default
 * ```ts
 * import { resolvePartitionOptions } from "./partition_options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvePartitionOptions({}).partitions, 1);
 * ```
 */
export function resolvePartitionOptions(
  options: PartitionOptions & { strategy?: string; key?: unknown },
): ResolvedPartitionOptions {
  const partitions = options.partitions ?? 1;
  checkCount("partitions", partitions, 1);
  const bufferBytes = options.partitionBufferBytes ?? DEFAULT_PARTITION_BUFFER_BYTES;
  checkCount("partitionBufferBytes", bufferBytes, 1);
  const key = options.partitionKey;
  if (key !== undefined && (typeof key !== "string" || key === "")) {
    throw new TypeError(
      `Cannot use partitionKey as a partition option: current value is ${String(key)}`,
    );
  }
  if (options.ordered !== undefined && typeof options.ordered !== "boolean") {
    throw new TypeError(
      `Cannot use ordered as a partition option: current value is ${String(options.ordered)}`,
    );
  }
  if (options.onSnapshot !== undefined && typeof options.onSnapshot !== "function") {
    throw new TypeError(
      `Cannot use onSnapshot as a partition option: current value is ${String(options.onSnapshot)}`,
    );
  }
  if (partitions > 1 && (options.strategy === "keyset" || options.key !== undefined)) {
    throw new TypeError(
      `Cannot use partitions with a keyset stream: current value is ${partitions}, but only cursor streams can be split`,
    );
  }
  return {
    partitions,
    partitionKey: key,
    ordered: options.ordered ?? false,
    partitionBufferBytes: bufferBytes,
    onSnapshot: options.onSnapshot,
  };
}
