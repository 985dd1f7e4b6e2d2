import type { PartitionOptions } from "../options.ts";

export type { PartitionOptions } from "../options.ts";
/** Default most bytes an `ordered` partitioned stream holds for each part that is not yet due: 8 MiB. */
export const DEFAULT_PARTITION_BUFFER_BYTES: number = 8 * 1024 * 1024;

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
