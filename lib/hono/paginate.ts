import { checkOptionNames } from "../check_option_names.ts";
import { checkStreamCall } from "../check_stream_call.ts";
import { SluiceError } from "../errors.ts";
import { openPostgresKeyset, resolveKeysetOptions } from "../sources/postgres_keyset.ts";
import type { Query, Sql } from "../sources/postgres_cursor.ts";
import type { StreamContext } from "./_context.ts";
import { errorResponse, problemResponse } from "./_problem.ts";
import type { ErrorHook } from "./_problem.ts";
import { decodeAfterToken, encodeAfterToken } from "./_token.ts";
import { checkScope, tokenScope } from "./_token_scope.ts";

/** Default rows a page holds when the request names no `limit`. */
export const DEFAULT_PAGE_LIMIT = 50;
/** Default cap on a request's `limit`. */
export const DEFAULT_MAX_PAGE_LIMIT = 1000;

/** Options of {@linkcode paginate}. */
export interface PaginateOptions {
  /**
   * The column(s) of the query's result to page by, as SQL names. Together unique and NOT NULL
   * (end with the primary key).
   */
  key: string | readonly string[];
  /** `"asc"` (default) or `"desc"`. */
  direction?: "asc" | "desc";
  /** Rows a page holds when the request has no `?limit=`. Default 50 (capped by `maxLimit`). */
  limit?: number;
  /** Largest `?limit=` honoured; a larger one is clamped. Default 1000. */
  maxLimit?: number;
  /**
   * Signs `after` tokens with HMAC-SHA-256 so clients cannot forge positions; without it tokens
   * are only encoded (a forged one can still only move the start within the same query). A signed
   * token is bound to the request's path and the query's SQL text and parameter values, or to
   * `scope`: anywhere else it is refused.
   */
  secret?: string;
  /**
   * What signed tokens are bound to instead of the request's path and the query's SQL text and
   * parameters: a route that passes `streamQuery()` the same `scope` and `secret` accepts this
   * route's tokens. Make it name everything that tells one walk from another (the shop, the
   * user), e.g. `` `orders of shop ${shop}` ``.
   */
  scope?: string;
  /**
   * An absolute `http(s)` URL the `Link` header's next-page URL starts with, followed by the
   * request's path and query (`https://api.example.com/v1` → `<https://api.example.com/v1/orders?after=…>`).
   * Default: a reference relative to the URL the client asked for (`<?after=…>`), which proxies
   * cannot get wrong; the `Host` header is never used.
   */
  linkBase?: string;
  /** `statement_timeout` for the page's statement. */
  statementTimeoutMs?: number;
  /**
   * Receives the real error behind an error response (the client gets an
   * `application/problem+json` without SQL or details). Default: `console.error` for 5xx.
   */
  onError?: ErrorHook;
}

function checkLimit(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot use ${name} as a page size: current value is ${String(value)}`);
  }
  if (value < 1) {
    throw new RangeError(
      `Cannot use ${name} as a page size: it must be at least 1, current value is ${value}`,
    );
  }
  return value;
}

function checkLinkBase(linkBase: unknown): string | undefined {
  if (linkBase === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = typeof linkBase === "string" ? new URL(linkBase) : undefined;
  } catch {
    url = undefined;
  }
  if (
    url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.search !== "" || url.hash !== "" || /[?#]/.test(linkBase as string)
  ) {
    throw new TypeError(
      `Cannot use linkBase as an absolute http(s) URL without query: current value is ${
        typeof linkBase === "string" ? JSON.stringify(linkBase) : String(linkBase)
      }`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/**
 * The `Link` header's target for the next page: the request's path and query (never its host)
 * with `after` set, relative to the requested URL or after `linkBase`.
 *
 * @param c The request's context.
 * @param after The next page's token.
 * @param linkBase The checked `linkBase` option.
 * @returns The URL reference.
 */
function nextPageReference(c: StreamContext, after: string, linkBase: string | undefined): string {
  const url = new URL(c.req.raw.url);
  url.searchParams.set("after", after);
  return linkBase === undefined ? url.search : `${linkBase}${url.pathname}${url.search}`;
}

const decoder = new TextDecoder();

/**
 * Serves one page of a query as JSON, `{ "rows": [...], "next": token | null }`, paging by a
 * unique key (keyset pagination: each page is one `… where (key) > (after) order by key limit n`
 * statement, fast at any depth, stable under concurrent writes). Rows are PostgreSQL's own
 * `row_to_json` of each row. When there is a next page, `next` holds an opaque base64url token
 * of the last row's key (HMAC-signed with `secret`, for this path and query or `scope`) and a
 * `Link: <?…&after=token>; rel="next"` header points to it: a reference relative to the URL the
 * client asked for, or an absolute URL after `linkBase`, never one built from the `Host` header.
 *
 * The request may set `?limit=` (clamped to `maxLimit`) and `?after=`. A malformed, tampered or
 * foreign token (signed for another path, query, parameter value or scope), or a bad limit, is a
 * 400 `application/problem+json`; database errors map to problems like `streamQuery`'s.
 *
 * @param c The Hono context of the request.
 * @param sql A postgres.js instance (works behind PgBouncer in transaction mode with
 *   `prepare: false`).
 * @param query The query, without `ORDER BY` (the page orders by the key).
 * @param options The key, direction, page sizes, token secret and scope, `Link` base.
 * @returns The page response.
 * @throws {TypeError | RangeError} On bad options (rejects the returned promise).
 *
 * @example Page through orders, newest first
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { paginate } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL, { prepare: false });
 * const app = new Hono();
 * app.get("/orders", (c) =>
 *   paginate(c, sql, sql`select id, total from orders where shop = ${c.req.query("shop")}`, {
 *     key: "id",
 *     direction: "desc",
 *     secret: process.env.PAGE_SECRET,
 *   }));
 * ```
 */
export async function paginate(
  c: StreamContext,
  sql: Sql,
  query: Query,
  options: PaginateOptions,
): Promise<Response> {
  const onError = typeof options?.onError === "function" ? options.onError : undefined;
  try {
    return await respond(c, sql, query, options, onError);
  } catch (error) {
    return errorResponse(c, error, onError);
  }
}

const PAGINATE_OPTION_NAMES = [
  "key",
  "direction",
  "limit",
  "maxLimit",
  "secret",
  "scope",
  "linkBase",
  "statementTimeoutMs",
  "onError",
];

async function respond(
  c: StreamContext,
  sql: Sql,
  query: Query,
  options: PaginateOptions,
  onError: ErrorHook | undefined,
): Promise<Response> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot use options as paginate options: current value is ${options}`);
  }
  checkOptionNames(options, PAGINATE_OPTION_NAMES, "paginate()");
  const keyset = resolveKeysetOptions({
    strategy: "keyset",
    key: options.key,
    direction: options.direction ?? "asc",
  })!;
  checkStreamCall(sql, query, { key: keyset.key, direction: keyset.direction }, "paginate()");
  const maxLimit = checkLimit("maxLimit", options.maxLimit ?? DEFAULT_MAX_PAGE_LIMIT);
  const fallback = Math.min(checkLimit("limit", options.limit ?? DEFAULT_PAGE_LIMIT), maxLimit);
  checkScope(options.scope);
  const linkBase = checkLinkBase(options.linkBase);
  const tokenOptions = {
    key: keyset.key,
    direction: keyset.direction,
    secret: options.secret,
    scope: options.secret === undefined ? undefined : tokenScope(c, query, options.scope),
  };

  const limitParam = c.req.query("limit");
  let limit = fallback;
  if (limitParam !== undefined) {
    if (!/^[0-9]{1,9}$/.test(limitParam) || Number(limitParam) < 1) {
      return problemResponse(c, {
        status: 400,
        title: "Bad Request",
        detail: "The limit parameter must be a positive integer.",
        code: "BAD_INPUT",
      });
    }
    limit = Math.min(Number(limitParam), maxLimit);
  }
  const token = c.req.query("after");
  let after: string[] | undefined;
  if (token !== undefined) {
    try {
      after = await decodeAfterToken(token, tokenOptions);
    } catch (error) {
      if (!(error instanceof SluiceError)) throw error;
      return problemResponse(c, {
        status: 400,
        title: "Bad Request",
        detail: "The after parameter is not a valid page token.",
        code: error.code,
      });
    }
  }

  let texts: string[];
  let nextKey: readonly string[] | undefined;
  try {
    const source = await openPostgresKeyset(sql, query, {
      ...keyset,
      after,
      output: "json",
      statementTimeoutMs: options.statementTimeoutMs,
    });
    try {
      // One row more than shown tells whether a next page exists.
      const batch = await source.fetch(limit + 1);
      const rows = batch.rows.length > limit ? batch.rows.slice(0, limit) : batch.rows;
      texts = rows.map((row) => decoder.decode(row[0]!));
      if (batch.rows.length > limit) nextKey = source.tailKeys()[0];
    } finally {
      await source.close();
    }
  } catch (error) {
    return errorResponse(c, error, onError);
  }

  const headers: Record<string, string> = {
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
  };
  let next: string | null = null;
  if (nextKey !== undefined) {
    next = await encodeAfterToken(nextKey, tokenOptions);
    headers["Link"] = `<${nextPageReference(c, next, linkBase)}>; rel="next"`;
  }
  return c.body(`{"rows":[${texts.join(",")}],"next":${JSON.stringify(next)}}`, 200, headers);
}
