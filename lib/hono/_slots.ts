/**
 * How a handler takes more of a {@linkcode streamLimit} slot budget for one request: a partitioned
 * stream (`partitions: n`) uses `n` connections, so it takes `n` slots. `streamLimit` registers a
 * taker for each request it lets through; `streamQuery` calls it before opening the stream.
 * Returns `false` (taking nothing) when fewer than `extra` slots are free.
 */
export type TakeSlots = (extra: number) => boolean;

/** The taker of each request passed by a `streamLimit`, keyed by the Web `Request`. */
export const SLOT_TAKERS: WeakMap<Request, TakeSlots> = new WeakMap();
