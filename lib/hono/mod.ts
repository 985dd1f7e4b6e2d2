/**
 * Hono adapters for sluice: serve query streams over HTTP.
 *
 * - {@linkcode streamQuery}: a route's rows as NDJSON, CSV, a JSON array or Server-Sent Events,
 *   with errors before the first byte as `application/problem+json` and every disconnect freeing
 *   its connection.
 * - {@linkcode streamLimit}: middleware capping concurrent streams, 503 + `Retry-After` beyond.
 *
 * @example Export a table
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { streamLimit, streamQuery } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL, { max: 4 });
 * const app = new Hono();
 * app.use("/export/*", streamLimit({ max: 4 }));
 * app.get("/export/orders", (c) => streamQuery(c, sql, "select * from orders"));
 * export default app;
 * ```
 *
 * @module
 */
export type { RetryInfo, StreamEnding, StreamOptions, StreamSummary } from "../options.ts";
export { streamQuery } from "./stream_query.ts";
export type { StreamFormat, StreamQueryOptions } from "./stream_query.ts";
export type { FormatStream } from "./_formats.ts";
export { streamLimit } from "./stream_limit.ts";
export { compressibleType } from "./compressible.ts";
export { ingestRequest } from "./ingest_request.ts";
export type { IngestRequestOptions } from "./ingest_request.ts";
export type { IngestConflict, IngestFormat, IngestOptions } from "../ingest.ts";
export type { StreamLimitOptions } from "./stream_limit.ts";
export { DEFAULT_MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT, paginate } from "./paginate.ts";
export type { PaginateOptions } from "./paginate.ts";
export type { ErrorHook } from "./_problem.ts";
export type { StreamContext, StreamMiddleware, StreamNext } from "./_context.ts";
export type { Database, DatabaseQuery } from "../sources/open_source.ts";
export type { ParameterizedQuery, PGliteDatabase, PGliteResults } from "../sources/pglite.ts";
export type { BunSql } from "../sources/bun_sql.ts";
