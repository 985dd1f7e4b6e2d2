import type { StreamContext } from "./_context.ts";
import { isProtocolViolation, SluiceError } from "../errors.ts";

/** An RFC 9457 problem: the body of every error response the Hono adapters send. */
export interface Problem {
  /** HTTP status code. */
  status: number;
  /** Short, fixed summary of the problem type. */
  title: string;
  /** Explanation for this occurrence; never holds SQL text, parameters or credentials. */
  detail: string;
  /** SQLSTATE or `SluiceError` code, when there is one. */
  code?: string;
  /** Seconds to wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number;
}

/** Seconds a client is told to wait after a 503 the adapter chose itself. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * Builds an `application/problem+json` response (RFC 9457) through the context, so headers that
 * middleware set with `c.header()` (CORS …) are kept.
 *
 * @param c The request's context.
 * @param problem What to send.
 * @returns The response, `Cache-Control: no-store`, with `Retry-After` when the problem has one.
 */
export function problemResponse(c: StreamContext, problem: Problem): Response {
  const body: Record<string, unknown> = {
    type: "about:blank",
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
  };
  if (problem.code !== undefined) body.code = problem.code;
  const headers: Record<string, string> = {
    "Content-Type": "application/problem+json; charset=utf-8",
    "Cache-Control": "no-store",
  };
  if (problem.retryAfterSeconds !== undefined) {
    headers["Retry-After"] = String(problem.retryAfterSeconds);
  }
  return c.body(JSON.stringify(body), problem.status, headers);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

const UNAVAILABLE = "Service Unavailable";

/**
 * Maps an error raised before a response's first byte to a problem. Only the SQLSTATE (or sluice
 * code) is passed on: PostgreSQL messages can quote the query, its parameters or object names.
 *
 * @param error What the stream failed with.
 * @returns The problem to send.
 */
export function problemFromError(error: unknown): Problem {
  const code = codeOf(error);
  if (error instanceof SluiceError) {
    if (error.code === "POOL_BUSY") {
      return {
        status: 503,
        title: UNAVAILABLE,
        detail: "No database connection is free; retry later.",
        code: error.code,
        retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
      };
    }
    if (error.code === "CONNECTION_LOST" || error.code === "CURSOR_LOST") {
      return {
        status: 503,
        title: UNAVAILABLE,
        detail: "The database connection was lost; retry later.",
        code: error.code,
        retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
      };
    }
    return {
      status: 500,
      title: "Internal Server Error",
      detail: "The query could not be streamed.",
      code: error.code,
    };
  }
  // A SQLSTATE: five characters, class 00–58 or F0/HV/P0/XX ("EPIPE" is a socket error).
  if (code !== undefined && /^(?:[0-9][0-9]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code)) {
    const cls = code.slice(0, 2);
    if (code === "57014") {
      return {
        status: 504,
        title: "Gateway Timeout",
        detail: "The query was cancelled (statement timeout).",
        code,
      };
    }
    if (cls === "42" || cls === "22") {
      return {
        status: 400,
        title: "Bad Request",
        detail: cls === "42"
          ? "The query is not valid (syntax, unknown object or permission)."
          : "A query parameter or value is not valid.",
        code,
      };
    }
    // 08 connection exception, 53 insufficient resources (too many connections), 57P0x shutdown,
    // 55P03 lock not available, 40001/40P01 serialization failure/deadlock: all transient. The
    // server's own protocol violation (08P01) is not: it fails the same way on every retry.
    if (
      (cls === "08" && !isProtocolViolation(error)) || cls === "53" || cls === "40" ||
      code === "55P03" || code.startsWith("57P")
    ) {
      return {
        status: 503,
        title: UNAVAILABLE,
        detail: "The database is temporarily unable to run the query; retry later.",
        code,
        retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
      };
    }
    return {
      status: 500,
      title: "Internal Server Error",
      detail: "The query failed.",
      code,
    };
  }
  // postgres.js connection failures (CONNECT_TIMEOUT, CONNECTION_CLOSED …) and socket errors.
  if (
    code !== undefined && (/^CONNECT/.test(code) || /^E[A-Z]+$/.test(code))
  ) {
    return {
      status: 503,
      title: UNAVAILABLE,
      detail: "The database could not be reached; retry later.",
      code,
      retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
    };
  }
  return { status: 500, title: "Internal Server Error", detail: "The query failed." };
}

/**
 * Receives the real error behind an error response or an aborted body, with the request's context
 * (for logs and metrics). The client only ever sees the problem, never this error.
 */
export type ErrorHook = (error: unknown, c: StreamContext) => void;

/**
 * Hands an error to the server side: `onError` when given, else `console.error` for errors the
 * server must act on (status 500 and above, or after the first byte). Never throws.
 *
 * @param c The request's context.
 * @param error The real error.
 * @param onError The caller's hook.
 * @param status The status the client got, if a response was still possible.
 */
export function reportError(
  c: StreamContext,
  error: unknown,
  onError: ErrorHook | undefined,
  status?: number,
): void {
  try {
    if (onError) onError(error, c);
    else if (status === undefined || status >= 500) console.error("sluice:", error);
  } catch { /* a logging hook must not change the response */ }
}

/**
 * The response for an error before the first byte: a mistake in the server's own code or options
 * (a `TypeError` or `RangeError`) is a 500 that says so without detail; anything else maps through
 * {@linkcode problemFromError}. The error itself goes to {@linkcode reportError}.
 *
 * @param c The request's context.
 * @param error What went wrong.
 * @param onError The caller's hook.
 * @returns An `application/problem+json` response.
 */
export function errorResponse(
  c: StreamContext,
  error: unknown,
  onError: ErrorHook | undefined,
): Response {
  const problem: Problem = error instanceof TypeError || error instanceof RangeError
    ? {
      status: 500,
      title: "Internal Server Error: the endpoint is misconfigured",
      detail: "The server's code or options for this resource are not valid; its logs say why.",
    }
    : problemFromError(error);
  reportError(c, error, onError, problem.status);
  return problemResponse(c, problem);
}
