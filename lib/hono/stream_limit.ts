import type { StreamMiddleware } from "./_context.ts";
import { DEFAULT_RETRY_AFTER_SECONDS, problemResponse } from "./_problem.ts";
import { SLOT_TAKERS } from "./_slots.ts";

/** Options of {@linkcode streamLimit}. */
export interface StreamLimitOptions {
  /** Most responses streaming at once; keep it at or below the pool size of the `sql` they use. */
  max: number;
  /** `Retry-After` of the 503 sent beyond `max`, in seconds. Default 1. */
  retryAfterSeconds?: number;
}

function checkCount(name: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot use ${name} as a stream limit: current value is ${String(value)}`);
  }
  if (value < min) {
    throw new RangeError(
      `Cannot use ${name} as a stream limit: it must be at least ${min}, current value is ${value}`,
    );
  }
}

/**
 * Wraps a response body so that `release` runs once, when the body ends, fails or is cancelled.
 *
 * @param body The body to watch.
 * @param release Called once.
 * @returns A stream passing the body's chunks through unchanged.
 */
function watchBody(
  body: ReadableStream<Uint8Array>,
  release: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        release();
        throw error;
      }
      if (result.done) {
        release();
        controller.close();
      } else {
        controller.enqueue(result.value);
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        release();
      }
    },
  }, { highWaterMark: 0 });
}

/**
 * Middleware that lets at most `max` responses stream at once and answers the rest at once with
 * `503 Service Unavailable` (`application/problem+json`, `Retry-After`) instead of letting them
 * queue for a database connection. A slot is held from the request until its response body has
 * been sent, failed or been cancelled by a disconnecting client — not merely until the handler
 * returns. Slots count connections: a `streamQuery` with `partitions: n` takes `n` slots (and is
 * answered with the 503 when fewer are free).
 *
 * @param options `max` streams at once (≥ 1); `retryAfterSeconds` for the 503 (default 1).
 * @returns The middleware.
 * @throws {TypeError | RangeError} When `max` or `retryAfterSeconds` is not a suitable integer.
 *
 * @example Four exports at a time on a pool of four connections
 * ```ts ignore
 * import { Hono } from "hono";
 * import postgres from "postgres";
 * import { streamLimit, streamQuery } from "@sluice/sluice/hono";
 *
 * const sql = postgres(process.env.DATABASE_URL, { max: 4 });
 * const app = new Hono();
 * app.use("/export/*", streamLimit({ max: 4, retryAfterSeconds: 2 }));
 * app.get("/export/orders", (c) => streamQuery(c, sql, "select * from orders"));
 * ```
 */
export function streamLimit(options: StreamLimitOptions): StreamMiddleware {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot use options as streamLimit options: current value is ${String(options)}`,
    );
  }
  const { max, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS } = options;
  checkCount("max", max, 1);
  checkCount("retryAfterSeconds", retryAfterSeconds, 0);
  let active = 0;

  return async function streamLimitMiddleware(c, next) {
    if (active >= max) {
      return problemResponse(c, {
        status: 503,
        title: "Service Unavailable",
        detail: `All ${max} stream slots are in use; retry later.`,
        code: "POOL_BUSY",
        retryAfterSeconds,
      });
    }
    active++;
    let taken = 1;
    let released = false;
    const release = (): void => {
      if (!released) released = true, active -= taken;
    };
    // Refused: the handler answers with its own 503, which streams nothing.
    let refused = false;
    SLOT_TAKERS.set(c.req.raw, (extra) => {
      if (released || active + extra > max) return !(refused = true);
      active += extra;
      taken += extra;
      return true;
    });
    try {
      await next();
    } catch (error) {
      release();
      throw error;
    }
    const res = c.res;
    // HEAD is answered from the GET handler's response with the body dropped (by Hono), so no
    // byte of it will be read.
    if (res.body === null || c.req.method === "HEAD" || refused) {
      release();
      return;
    }
    c.res = new Response(watchBody(res.body, release), res);
  };
}
