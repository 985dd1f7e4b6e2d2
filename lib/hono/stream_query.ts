import type { StreamContext } from "./_context.ts";
import { checkOptionNames } from "../check_option_names.ts";
import { STREAM_OPTION_NAMES } from "../options.ts";
import type { FormatStream } from "./_formats.ts";
import type { StreamOptions } from "../options.ts";
import type { Database, DatabaseQuery } from "../sources/open_source.ts";
import { FORMAT_STREAMS } from "./_formats.ts";
import { negotiateFormat, STREAM_FORMATS, supportedMediaTypes } from "./_negotiate.ts";
import type { StreamFormat } from "./_negotiate.ts";
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  errorResponse,
  problemFromError,
  problemResponse,
  reportError,
} from "./_problem.ts";
import type { ErrorHook } from "./_problem.ts";
import { createFailureMark } from "./_failure_mark.ts";
import { SLOT_TAKERS } from "./_slots.ts";
import { resolvePartitionOptions } from "../partitions/partition_options.ts";
import { decodeAfterToken } from "./_token.ts";
import { checkScope, tokenScope } from "./_token_scope.ts";

export type { StreamFormat } from "./_negotiate.ts";

/** Options of {@linkcode streamQuery}: the stream options plus how the response is shaped. */
export interface StreamQueryOptions extends StreamOptions {
  /**
   * The format to send. Unset: the `?format=` query parameter (`ndjson`, `csv`, `json`, `sse`,
   * `arrow`), else the `Accept` header (`application/x-ndjson`, `application/jsonl`, `text/csv`,
   * `application/json`, `text/event-stream`, `application/vnd.apache.arrow.stream`), else NDJSON.
   * Nothing acceptable: 406. Arrow only with the `arrow` option.
   */
  format?: StreamFormat;
  /**
   * Serves Arrow (`format: "arrow"`, `?format=arrow`, `Accept: application/vnd.apache.arrow.stream`)
   * with this encoder: pass `streamArrow` from `@sluice/sluice/arrow`. Without it Arrow is not
   * offered, and `./hono` never loads the Arrow library.
   */
  arrow?: FormatStream;
  /** Sends `Content-Disposition: attachment` with this file name. */
  filename?: string;
  /** CSV only: send a header line with the column names. Default `true`. */
  header?: boolean;
  /**
   * Keyset streams (`key` set): a request's `?after=` token — the `next` of `paginate()` with the
   * same key and direction — starts the stream after that row; with `secret` the token must be
   * signed with it, for this request's path and this query (SQL text and parameter values), or
   * for `scope`. A bad or foreign token is a 400 problem.
   */
  secret?: string;
  /**
   * Keyset streams with `secret`: accept tokens signed for this scope instead of this path and
   * query — give the `paginate()` route whose walk this stream continues the same `scope`.
   */
  scope?: string;
  /**
   * Receives the real error whenever the client gets an error instead of rows: before the first
   * byte (the client gets an `application/problem+json` without SQL or details) and after it (the
   * response is aborted). Default: `console.error` for 5xx problems and aborted responses.
   */
  onError?: ErrorHook;
}

// Every response streams rows that may change on the next request; proxies (nginx) must not
// buffer a body that can be gigabytes long.
const STREAM_HEADERS: Record<string, string> = {
  "Cache-Control": "no-store",
  "X-Accel-Buffering": "no",
  "X-Content-Type-Options": "nosniff",
};

/**
 * `Content-Disposition` for a download (RFC 6266): an ASCII fallback plus the exact UTF-8 name.
 *
 * @param filename The file name.
 * @returns The header value.
 */
function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase(),
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * One signal that aborts when either does (`AbortSignal.any` where the runtime has it).
 *
 * @param a A signal or nothing.
 * @param b Another signal.
 * @returns A signal following both.
 */
function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  if (a === undefined) return b;
  if (typeof AbortSignal.any === "function") return AbortSignal.any([a, b]);
  const controller = new AbortController();
  const follow = (s: AbortSignal) => () => controller.abort(s.reason);
  if (a.aborted) controller.abort(a.reason);
  else if (b.aborted) controller.abort(b.reason);
  else {
    a.addEventListener("abort", follow(a), { once: true });
    b.addEventListener("abort", follow(b), { once: true });
  }
  return controller.signal;
}

const QUERY_OPTION_NAMES = [
  ...STREAM_OPTION_NAMES,
  "format",
  "filename",
  "header",
  "secret",
  "scope",
  "onError",
  "arrow",
];

function checkOptions(options: StreamQueryOptions): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot use options as streamQuery options: current value is ${String(options)}`,
    );
  }
  checkOptionNames(options, QUERY_OPTION_NAMES, "streamQuery()");
  const { format, filename, arrow } = options;
  checkScope(options.scope);
  if (arrow !== undefined && typeof arrow !== "function") {
    throw new TypeError(
      `Cannot use arrow as the Arrow encoder (streamArrow from @sluice/sluice/arrow): current value is ${
        String(arrow)
      }`,
    );
  }
  if (format === "arrow" && arrow === undefined) {
    throw new TypeError(
      `Cannot use format as arrow without the arrow option (streamArrow from @sluice/sluice/arrow): current value is arrow`,
    );
  }
  if (format !== undefined && !STREAM_FORMATS.includes(format)) {
    throw new TypeError(
      `Cannot use format as a stream format (${STREAM_FORMATS.join(", ")}): current value is ${
        String(format)
      }`,
    );
  }
  if (filename !== undefined && (typeof filename !== "string" || filename === "")) {
    throw new TypeError(
      `Cannot use filename as a file name: current value is ${JSON.stringify(filename)}`,
    );
  }
}

/**
 * Serves a query's rows as a streamed HTTP response in NDJSON, CSV, a JSON array,
 * Server-Sent Events or (given `arrow: streamArrow`) Arrow, chosen by `options.format`, `?format=`
 * or `Accept`.
 *
 * The response is built only once the first batch was fetched, so an error before the first byte
 * (bad SQL or parameters, statement timeout, no free connection) becomes an
 * `application/problem+json` response (RFC 9457) with the right status — 400, 504, 503 with
 * `Retry-After`, else 500 — that names the SQLSTATE but never the SQL, its parameters or
 * credentials. An error after the first byte aborts the response, so the client sees a failed
 * transfer rather than a body that looks complete: no terminating chunk over HTTP/1.1, a reset
 * on Bun. An HTTP/1.0 body (nginx's default towards upstreams) ends with the connection, and
 * Deno.serve closes it as after a complete body; so NDJSON, CSV and JSON bodies first end with
 * a mark no reader of the format accepts — a line that is not JSON, a quoted CSV field never
 * closed, text where JSON needs `,` or `]` — saying `sluice: the query failed after the response
 * started (SQLSTATE); this response is incomplete` (SSE lacks its `end` event anyway). A client
 * that disconnects cancels the stream,
 * which closes the cursor and frees the connection; one that stops reading is cut off after
 * `idleTimeoutMs`. `HEAD` requests get the headers without a query being run.
 *
 * Unlike the format functions, `copy` defaults to `false` here: a server streams to many clients
 * at once, and a cursor's paced fetches hold far less memory under load than `COPY` streams that
 * run at the server's speed (bench/RESULTS.md). Pass `copy: true` for parameterless exports that
 * should run at `COPY`'s speed.
 *
 * With `partitions: n` the response is read as `n` parts over `n` connections in one snapshot
 * (see `PartitionOptions`); behind `streamLimit` it takes `n` slots, and is answered
 * with a 503 problem when fewer are free.
 *
 * @param c The Hono context of the request.
 * @param sql A postgres.js instance; one connection is reserved while the response streams
 *   (`partitions` of them with `partitions`).
 * @param query The query, as a `sql` fragment (with parameters), a SQL string or a
 *   `{ table, columns?, where? }`.
 * @param options Stream options (batch sizing, timeouts, signal) plus `format`, `filename` and,
 *   for CSV, `header`.
 * @returns The response: 200 with the streamed body, 406 when no format is acceptable, or a
 *   problem response.
 * @throws {TypeError | RangeError} On bad options (rejects the returned promise).
 *
 * @example Export a table in whatever format the client asks for
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { streamQuery } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const app = new Hono();
 * app.get("/orders", (c) =>
 *   streamQuery(c, sql, sql`select * from orders where status = ${c.req.query("status") ?? "paid"}`, {
 *     filename: "orders",
 *   }));
 * export default app;
 * ```
 */
export async function streamQuery(
  c: StreamContext,
  sql: Database,
  query: DatabaseQuery,
  options: StreamQueryOptions = {},
): Promise<Response> {
  const onError = typeof options?.onError === "function" ? options.onError : undefined;
  try {
    return await respond(c, sql, query, options, onError);
  } catch (error) {
    return errorResponse(c, error, onError);
  }
}

async function respond(
  c: StreamContext,
  sql: Database,
  query: DatabaseQuery,
  options: StreamQueryOptions,
  onError: ErrorHook | undefined,
): Promise<Response> {
  checkOptions(options);
  const { format, filename, secret, scope, arrow, onError: _onError, ...streamOptions } = options;
  const negotiated = negotiateFormat(c, format, arrow !== undefined);
  if (negotiated === undefined) {
    return problemResponse(c, {
      status: 406,
      title: "Not Acceptable",
      detail: `This resource can be sent as ${
        supportedMediaTypes(arrow !== undefined)
      } (or ?format=${
        STREAM_FORMATS.filter((f) => arrow !== undefined || f !== "arrow").join("|")
      }).`,
    });
  }
  const headers: Record<string, string> = {
    ...STREAM_HEADERS,
    "Content-Type": negotiated.format === "arrow"
      ? negotiated.mediaType
      : negotiated.format === "csv" && options.header !== false
      ? `${negotiated.mediaType}; charset=utf-8; header=present`
      : `${negotiated.mediaType}; charset=utf-8`,
  };
  if (format === undefined) headers["Vary"] = "Accept";
  if (filename !== undefined) headers["Content-Disposition"] = contentDisposition(filename);
  // Hono answers HEAD by running the GET handler and dropping the body; a body stream that was
  // never read would hold its cursor open, so HEAD never builds one.
  if (c.req.method === "HEAD") return c.body(null, 200, headers);

  // The request's signal aborts when the client goes away. Deno.serve and Bun.serve also cancel
  // the body then, but the signal covers the wait for the first batch (no body exists yet) and
  // servers that do not cancel the body.
  const token = streamOptions.key !== undefined && streamOptions.after === undefined
    ? c.req.query("after")
    : undefined;
  if (token !== undefined) {
    const key = typeof streamOptions.key === "string" ? [streamOptions.key] : streamOptions.key!;
    const direction = streamOptions.direction ?? "asc";
    try {
      streamOptions.after = await decodeAfterToken(token, {
        key,
        direction,
        secret,
        scope: secret === undefined ? undefined : tokenScope(c, query, scope),
      });
    } catch (error) {
      return problemResponse(c, {
        ...problemFromError(error),
        status: 400,
        title: "Bad Request",
        detail: "The after parameter is not a valid page token.",
      });
    }
  }
  // A partitioned stream uses one connection per part: it takes as many streamLimit slots.
  const parts = resolvePartitionOptions(streamOptions).partitions;
  const take = SLOT_TAKERS.get(c.req.raw);
  if (parts > 1 && take && !take(parts - 1)) {
    return problemResponse(c, {
      status: 503,
      title: "Service Unavailable",
      detail:
        `A stream of ${parts} parts needs ${parts} stream slots and fewer are free; retry later.`,
      code: "POOL_BUSY",
      retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
    });
  }
  const signal = anySignal(streamOptions.signal, c.req.raw.signal);
  let fetched = false;
  const onBatch = streamOptions.onBatch;
  // `header` is CSV's alone; the other formats refuse options they do not know.
  if (negotiated.format !== "csv") delete streamOptions.header;
  const encode = negotiated.format === "arrow" ? arrow! : FORMAT_STREAMS[negotiated.format];
  const source = encode(sql, query, {
    ...streamOptions,
    // A server streams to many clients at once: through COPY each stream moves rows as fast as the
    // server sends them, which under many concurrent responses costs far more memory than a
    // cursor's paced fetches for a modest gain in speed. So the adapter keeps a cursor unless
    // asked for COPY.
    copy: streamOptions.copy ?? false,
    signal,
    onBatch: (info) => {
      fetched = true;
      onBatch?.(info);
    },
  }).getReader();

  // Read until the first batch came back from the server, so that errors of DECLARE and the first
  // FETCH still become a status code. An encoder may emit a prefix (`[`) before fetching.
  const head: Uint8Array[] = [];
  let ended = false;
  try {
    while (!fetched && !ended) {
      const result = await source.read();
      if (result.done) ended = true;
      else head.push(result.value);
    }
  } catch (error) {
    return errorResponse(c, error, onError);
  }

  // The response body replays the chunks read above, then reads on. It is pulled once per chunk
  // (high-water mark 0), so the format stream's own idle timeout sees the client's pace.
  //
  // When that stream fails (a query error, idle timeout, a lost connection), the body must not
  // end like a complete one. Erroring it makes the server abort the response: no terminating
  // chunk over HTTP/1.1, a reset from Bun.serve. But an HTTP/1.0 body (what nginx asks upstreams
  // for by default) ends where the connection closes, and Deno.serve closes it with a FIN as
  // after a complete body. So the body first sends the format's failure mark (bytes no reader of
  // the format takes for a complete result, see createFailureMark) and errors once that was read.
  // Formats whose end is explicit (JSON's `]`, SSE's `end` event) have no mark and error at once,
  // even while a stalled client keeps its socket full.
  const mark = createFailureMark(negotiated.format);
  const queue = head;
  let failure: { error: unknown; sent: boolean } | undefined;
  let pulling = false;
  let ctrl: ReadableStreamDefaultController<Uint8Array> | undefined;
  // Returns the mark to send, once per failure, or errors the body when there is none.
  const fail = (error: unknown): Uint8Array | undefined => {
    failure ??= { error, sent: false };
    if (failure.sent) return undefined;
    failure.sent = true;
    // A client that left is not a failure to report.
    if (!(signal.aborted && error === signal.reason)) reportError(c, error, onError);
    const tail = mark.end(problemFromError(error).code);
    if (tail === undefined) ctrl?.error(error);
    return tail;
  };
  source.closed.catch((error) => {
    // A pull in progress sees the same error from its read.
    if (pulling) return;
    const tail = fail(error);
    if (tail !== undefined) queue.push(tail);
  });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      ctrl = controller;
    },
    async pull(controller) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        mark.see(chunk);
        controller.enqueue(chunk);
        if (queue.length === 0 && ended) controller.close();
        return;
      }
      if (failure !== undefined) {
        // The mark was just handed to the server, which may still hold it in its own buffer
        // (@hono/node-server writes and reads on at once, and destroys the response on an error,
        // dropping what Node had not written yet): error a macrotask later, once it is out.
        await new Promise((resolve) => setTimeout(resolve, 0));
        return controller.error(failure.error);
      }
      if (ended) return controller.close();
      pulling = true;
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await source.read();
      } catch (error) {
        const tail = fail(error);
        if (tail !== undefined) controller.enqueue(tail);
        return;
      } finally {
        pulling = false;
      }
      if (result.done) controller.close();
      else {
        mark.see(result.value);
        controller.enqueue(result.value);
      }
    },
    cancel(reason) {
      return source.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return c.body(body, 200, headers);
}
