/**
 * sluice streams PostgreSQL result sets of any size as Web `ReadableStream`s with flat memory.
 *
 * A query runs as a server-side cursor on a reserved connection; each read fetches the next batch,
 * sized from the bytes seen so far (about 2 MiB a batch by default) rather than a fixed row count.
 * Every way a stream can end — done, cancelled, aborted, idle, failed — closes the cursor and
 * returns the connection to the pool.
 *
 * @example Stream rows and batches
 * ```ts ignore
 * import postgres from "postgres";
 * import { forEachBatch, streamBatches, streamRows } from "@sluice/sluice";
 *
 * const sql = postgres("postgres://postgres@127.0.0.1:5432/postgres");
 * for await (const row of streamRows(sql, sql`select * from orders where status = ${"paid"}`)) {
 *   console.log(row.id);
 * }
 * await forEachBatch(streamBatches(sql, "select * from orders"), save, { concurrency: 4 });
 * ```
 *
 * @module
 */
export { streamBatches } from "./lib/stream_batches.ts";
export { streamRows } from "./lib/stream_rows.ts";
export { streamNdjson } from "./lib/stream_ndjson.ts";
export { streamCsv } from "./lib/stream_csv.ts";
export { DEFAULT_MAX_LINE_BYTES, ingest } from "./lib/ingest.ts";
export type { IngestConflict, IngestFormat, IngestOptions, IngestResult } from "./lib/ingest.ts";
export type { CsvOptions } from "./lib/stream_csv.ts";
export { streamJsonArray } from "./lib/stream_json_array.ts";
export { streamSse } from "./lib/stream_sse.ts";
export { forEachBatch } from "./lib/for_each_batch.ts";
export { loadIncludes } from "./lib/load_includes.ts";
export type {
  Include,
  IncludeBase,
  IncludeMany,
  IncludeMap,
  IncludeOne,
  IncludeQuery,
} from "./lib/load_includes.ts";
export type { ForEachBatchOptions, ForEachBatchResult } from "./lib/for_each_batch.ts";
export {
  DEFAULT_FIRST_BATCH_ROWS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_ROWS,
  DEFAULT_MIN_BATCH_ROWS,
  DEFAULT_TARGET_BATCH_BYTES,
} from "./lib/options.ts";
export type {
  BatchInfo,
  BatchSizing,
  RetryInfo,
  StreamEnding,
  StreamOptions,
  StreamSummary,
} from "./lib/options.ts";
export { SluiceError } from "./lib/errors.ts";
export type { SluiceErrorCode, SluiceErrorOptions } from "./lib/errors.ts";
export type { Query, Row, Sql, SqlQuery } from "./lib/sources/postgres_cursor.ts";
export type { Database, DatabaseQuery } from "./lib/sources/open_source.ts";
export type { PGliteDatabase, PGliteResults } from "./lib/sources/pglite.ts";
export type {
  BuilderQuery,
  CompiledQuery,
  ParameterizedQuery,
} from "./lib/sources/postgres_query.ts";
export type { TableQuery } from "./lib/partitions/table_query.ts";
export type { PartitionOptions } from "./lib/partitions/partition_options.ts";
export { DEFAULT_PARTITION_BUFFER_BYTES } from "./lib/partitions/partition_options.ts";
export type { BunSql } from "./lib/sources/bun_sql.ts";
