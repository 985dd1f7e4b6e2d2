/**
 * Arrow output for sluice: stream query results in the Arrow IPC stream format, typed columns
 * that DuckDB, Polars, pandas and pyarrow load without parsing.
 *
 * A separate entry point, so that the core and `./hono` do not load the Arrow library
 * (`@uwdata/flechette`); `streamQuery` serves Arrow once given {@linkcode streamArrow} as its
 * `arrow` option.
 *
 * @example Serve a table as Arrow
 * ```ts ignore
 * import postgres from "postgres";
 * import { streamArrow } from "@sluice/sluice/arrow";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * Deno.serve(() =>
 *   new Response(streamArrow(sql, "select * from orders"), {
 *     headers: { "content-type": "application/vnd.apache.arrow.stream" },
 *   })
 * );
 * ```
 *
 * @module
 */
export {
  ARROW_STREAM_MEDIA_TYPE,
  DEFAULT_ARROW_TARGET_BATCH_BYTES,
  streamArrow,
} from "./stream_arrow.ts";
export type { StreamOptions } from "../options.ts";
export type { Database, DatabaseQuery } from "../sources/open_source.ts";
