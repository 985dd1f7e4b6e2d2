import { COMPRESSIBLE_CONTENT_TYPE_REGEX } from "hono/compress";

const NDJSON = /^\s*application\/(?:x-ndjson|jsonl)(?:[;\s]|$)/i;

/**
 * Whether Hono's `compress()` should compress a response of this `Content-Type`: what Hono
 * compresses by default (CSV, JSON …; never Server-Sent Events, whose events must not wait in a
 * compressor's buffer) plus NDJSON, which Hono's list lacks. Pass it as `contentTypeFilter`.
 *
 * @param type The response's `Content-Type`.
 * @returns `true` to compress.
 *
 * @example Compress every export but the event streams
 * ```ts ignore
 * import { Hono } from "hono";
 * import { compress } from "hono/compress";
 * import { compressibleType } from "@sluice/sluice/hono";
 *
 * const app = new Hono();
 * app.use(compress({ contentTypeFilter: compressibleType }));
 * ```
 */
export function compressibleType(type: string): boolean {
  return COMPRESSIBLE_CONTENT_TYPE_REGEX.test(type) || NDJSON.test(type);
}
