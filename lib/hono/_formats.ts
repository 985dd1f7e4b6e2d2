import type { StreamOptions } from "../options.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import { streamCsv } from "../stream_csv.ts";
import { streamJsonArray } from "../stream_json_array.ts";
import { streamNdjson } from "../stream_ndjson.ts";
import { streamSse } from "../stream_sse.ts";
import type { StreamFormat } from "./_negotiate.ts";

/** A format function: `(sql, query, options) => ReadableStream<Uint8Array>`. */
export type FormatStream = (
  sql: Database,
  query: DatabaseQuery,
  options?: StreamOptions & { header?: boolean },
) => ReadableStream<Uint8Array>;

/** The encoder of each format. */
export const FORMAT_STREAMS: Record<Exclude<StreamFormat, "arrow">, FormatStream> = {
  ndjson: streamNdjson,
  csv: streamCsv,
  json: streamJsonArray,
  sse: streamSse,
};
