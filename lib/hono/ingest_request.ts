import { SluiceError } from "../errors.ts";
import { ingest } from "../ingest.ts";
import type { IngestFormat, IngestOptions } from "../ingest.ts";
import type { Sql } from "../sources/postgres_cursor.ts";
import type { StreamContext } from "./_context.ts";
import { problemFromError, problemResponse } from "./_problem.ts";
import type { Problem } from "./_problem.ts";

/** Options of {@linkcode ingestRequest}: those of `ingest`, with `format` optional. */
export interface IngestRequestOptions extends Omit<IngestOptions, "format"> {
  /** The body's format; default: from `Content-Type` (`text/csv`, `application/x-ndjson`). */
  format?: IngestFormat;
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

/** Maps an ingest failure to a problem; errors about the body say what and where. */
function problemOf(error: unknown): Problem {
  if (error instanceof SluiceError && error.code === "BAD_INPUT") {
    return { status: 400, title: "Bad Request", detail: error.message, code: error.code };
  }
  const pg = error as { code?: unknown; message?: unknown; where?: unknown } | null;
  const code = typeof pg?.code === "string" ? pg.code : undefined;
  // Data exceptions (22) and integrity violations (23) are about the body's values, which the
  // client sent: its own values and PostgreSQL's line/column (`where`) are safe to echo.
  if (code !== undefined && /^2[23][0-9A-Z]{3}$/.test(code)) {
    const where = typeof pg?.where === "string" ? ` (${pg.where})` : "";
    const conflict = code === "23505" || code === "23P01";
    return {
      status: conflict ? 409 : 400,
      title: conflict ? "Conflict" : "Bad Request",
      detail: `${String(pg?.message)}${where}`,
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
 * `detail` names the line and the column (for a value PostgreSQL rejects, its message and its
 * `COPY t, line 5, column amount` context); a unique violation is 409; an unknown `Content-Type`
 * is 415. A client that goes away mid-upload aborts the ingest: nothing is committed.
 *
 * @param c The Hono context.
 * @param sql A postgres.js instance; one connection is reserved while the body is read.
 * @param table The table, `"name"` or `"schema.name"`.
 * @param options `format` (default: from `Content-Type`), `columns`, `onConflict`,
 *   `targetBatchBytes`, `signal`.
 * @returns The response; bad options (a bug in the route) give a 500 problem.
 *
 * @example An upload endpoint
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { ingestRequest } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const app = new Hono();
 * app.post("/import/orders", (c) =>
 *   ingestRequest(c, sql, "orders", { onConflict: { key: ["id"], update: "all" } }));
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
  const ingestOptions: IngestOptions = { ...options, format };
  if (signal !== undefined) ingestOptions.signal = signal;
  else delete ingestOptions.signal;
  try {
    const { rows } = await ingest(sql, table, body, ingestOptions);
    return c.body(JSON.stringify({ rows }), 200, {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
    });
  } catch (error) {
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
