import { SluiceError } from "../errors.ts";
import { ingest } from "../ingest.ts";
import type { IngestFormat, IngestOptions } from "../ingest.ts";
import { quoteName } from "../ingest/_target.ts";
import type { Sql } from "../sources/postgres_cursor.ts";
import type { StreamContext } from "./_context.ts";
import { problemFromError, problemResponse } from "./_problem.ts";
import type { Problem } from "./_problem.ts";

/** Options of {@linkcode ingestRequest}: those of `ingest`, with `format` optional. */
export interface IngestRequestOptions extends Omit<IngestOptions, "format"> {
  /** The body's format; default: from `Content-Type` (`text/csv`, `application/x-ndjson`). */
  format?: IngestFormat;
  /**
   * Called with the full error of every failed ingest (PostgreSQL's message, `where`, constraint
   * and table names …) before the response is sent: the client's problem body carries only the
   * line, the column and a fixed description. Use it to log. Errors it throws are ignored.
   */
  onError?: (error: unknown, c: StreamContext) => void;
}

const NDJSON_TYPES = [
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-jsonlines",
  "application/jsonlines",
];

function formatOf(contentType: string | undefined): IngestFormat | undefined {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === "text/csv") return "csv";
  if (type !== undefined && NDJSON_TYPES.includes(type)) return "ndjson";
  return undefined;
}

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  if (typeof AbortSignal.any === "function") return AbortSignal.any(present);
  const controller = new AbortController();
  for (const s of present) {
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener("abort", () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}

/** What a client is told about a value or row PostgreSQL refused, by SQLSTATE. */
const DESCRIPTIONS: Record<string, string> = {
  "22001": "a value is too long for its column",
  "22003": "a number is out of range for its column",
  "22007": "a date or time is not valid",
  "22008": "a date or time is out of range",
  "22021": "a byte sequence is not valid in the database's encoding",
  "22P02": "a value is not valid for its column's type",
  "22P04": "a line does not have the fields the table expects",
  "22P05": "a character cannot be stored in the database's encoding",
  "23502": "a column that must have a value is null",
  "23503": "a row refers to a row that does not exist (foreign key)",
  "23505": "a row's key already exists",
  "23514": "a row breaks a check constraint",
  "23P01": "a row conflicts with another (exclusion constraint)",
};

/**
 * The line and column of PostgreSQL's COPY context (`COPY orders, line 5, column amount: "x"`),
 * the last line of `where` (a trigger's context lines come first and are not passed on).
 */
function positionOf(where: unknown): string {
  if (typeof where !== "string") return "";
  const copy = where.split("\n").reverse().find((line) => line.startsWith("COPY "));
  const match = copy?.match(/, line (\d+)(?:, column (.*?))?(?:: ".*)?$/s);
  if (!match) return "";
  const column = match[2] === undefined ? "" : `, column ${quoteName(match[2])}`;
  return ` line ${match[1]} of the body${column}`;
}

/**
 * Maps an ingest failure to a problem. Errors about the body say what and where (line, column);
 * nothing else of PostgreSQL's error (its message, `where`, `detail`, constraint, schema or table
 * names) is passed on: a trigger's error context holds its SQL.
 */
function problemOf(error: unknown): Problem {
  if (error instanceof SluiceError) {
    if (error.code === "BAD_INPUT") {
      return { status: 400, title: "Bad Request", detail: error.message, code: error.code };
    }
    if (error.code === "LINE_TOO_LONG") {
      return { status: 413, title: "Content Too Large", detail: error.message, code: error.code };
    }
    if (error.code === "IDLE_TIMEOUT") {
      return {
        status: 408,
        title: "Request Timeout",
        detail: "The upload sent nothing for too long; nothing was stored.",
        code: error.code,
      };
    }
  }
  const pg = error as { code?: unknown; where?: unknown } | null;
  const code = typeof pg?.code === "string" ? pg.code : undefined;
  // Data exceptions (22) and integrity violations (23) are about the body's values.
  if (code !== undefined && /^2[23][0-9A-Z]{3}$/.test(code)) {
    const conflict = code === "23505" || code === "23P01";
    const description = DESCRIPTIONS[code] ??
      (code.startsWith("22") ? "a value is not valid" : "a row breaks an integrity constraint");
    const position = positionOf(pg?.where);
    return {
      status: conflict ? 409 : 400,
      title: conflict ? "Conflict" : "Bad Request",
      detail: `Cannot store${position || " the body"}: ${description}.`,
      code,
    };
  }
  return problemFromError(error);
}

/**
 * Streams a request's NDJSON or CSV body into a table with {@linkcode ingest}: `COPY`, all or
 * nothing, the body read only as fast as PostgreSQL stores it.
 *
 * Responds `200 { "rows": n }` once committed. Bad input is `400 application/problem+json` whose
 * `detail` names the line and the column (for a value PostgreSQL rejects, the line and column of
 * its COPY context and a fixed description of the SQLSTATE — never its message, SQL or object
 * names: pass `onError` to see the full error); a unique violation is 409; a line longer than
 * `maxLineBytes` is 413; a body that stalls for `idleTimeoutMs` is 408; an unknown
 * `Content-Type` is 415. A client that goes away mid-upload aborts the ingest: nothing is
 * committed.
 *
 * The handler holds a connection until the body is read: put it behind `streamLimit` (at most the
 * pool's size) so that uploads cannot take every connection.
 *
 * @param c The Hono context.
 * @param sql A postgres.js instance; one connection is reserved while the body is read.
 * @param table The table, `"name"` or `"schema.name"`.
 * @param options `format` (default: from `Content-Type`), `columns`, `onConflict`,
 *   `targetBatchBytes`, `signal`, `idleTimeoutMs`, `maxLineBytes`, `onError`.
 * @returns The response; bad options (a bug in the route) give a 500 problem.
 *
 * @example An upload endpoint
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { ingestRequest, streamLimit } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL, { max: 4 });
 * const app = new Hono();
 * app.use("/import/*", streamLimit({ max: 2 }));
 * app.post("/import/orders", (c) =>
 *   ingestRequest(c, sql, "orders", {
 *     onConflict: { key: ["id"], update: "all" },
 *     idleTimeoutMs: 30_000,
 *     onError: (error) => console.error("import failed", error),
 *   }));
 * ```
 */
export async function ingestRequest(
  c: StreamContext,
  sql: Sql,
  table: string,
  options: IngestRequestOptions = {},
): Promise<Response> {
  const format = options.format ?? formatOf(c.req.header("content-type"));
  if (format === undefined) {
    return problemResponse(c, {
      status: 415,
      title: "Unsupported Media Type",
      detail: "Send text/csv or application/x-ndjson.",
    });
  }
  const raw = c.req.raw;
  const body = raw.body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
  const signal = anySignal([options.signal, raw.signal]);
  const { onError, ...rest } = options;
  const ingestOptions: IngestOptions = { ...rest, format };
  if (signal !== undefined) ingestOptions.signal = signal;
  else delete ingestOptions.signal;
  try {
    if (onError !== undefined && typeof onError !== "function") {
      throw new TypeError(`Cannot use onError as a function: current value is ${String(onError)}`);
    }
    const { rows } = await ingest(sql, table, body, ingestOptions);
    return c.body(JSON.stringify({ rows }), 200, {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
    });
  } catch (error) {
    try {
      onError?.(error, c);
    } catch {
      // A failing log hook must not replace the response.
    }
    if (signal?.aborted) {
      return problemResponse(c, {
        status: 400,
        title: "Bad Request",
        detail: "The upload was aborted; nothing was stored.",
      });
    }
    return problemResponse(c, problemOf(error));
  }
}
