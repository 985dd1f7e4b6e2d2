/**
 * Hono adapters for sluice: serve query streams over HTTP.
 *
 * @module
 */
export type { StreamOptions } from "../options.ts";
