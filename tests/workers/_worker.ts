// A Hono app using sluice as a Cloudflare Worker, bundled by workerd_test.ts and served by
// workerd. One postgres.js client per request (a Worker cannot use a socket opened by another
// request), ended once the body is done. Not a test file.
import { Hono } from "hono";
import type { Context } from "hono";
import postgres from "postgres";
import { streamLimit, streamQuery } from "../../lib/hono/mod.ts";
import type { StreamFormat } from "../../lib/hono/mod.ts";

interface Env {
  DATABASE_URL: string;
  APP: string;
  IDLE_MS: string;
}
type WorkerContext = Context<{ Bindings: Env }>;

/** Hands the body through and calls `done` once it ended, failed or was cancelled. */
function onBodyEnd(response: Response, done: () => void): Response {
  if (response.body === null) {
    done();
    return response;
  }
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          controller.close();
          done();
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        done();
      }
    },
    cancel(reason) {
      done();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(body, response);
}

async function rows(c: WorkerContext): Promise<Response> {
  const sql = postgres(c.env.DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: c.env.APP },
  });
  const n = Number(c.req.query("n") ?? 10);
  const format = c.req.query("format") as StreamFormat | undefined;
  let ended!: () => void;
  const finished = new Promise<void>((resolve) => (ended = resolve));
  c.executionCtx.waitUntil(finished.then(() => sql.end({ timeout: 5 })));
  try {
    const response = await streamQuery(
      c,
      sql,
      sql`select g as id, 'row ' || g as name, g * 0.5 as half from generate_series(1, ${n}::int) g`,
      { idleTimeoutMs: Number(c.env.IDLE_MS), ...(format ? { format } : {}) },
    );
    return onBodyEnd(response, ended);
  } catch (error) {
    ended();
    throw error;
  }
}

const app = new Hono<{ Bindings: Env }>();
app.get("/rows", rows);
app.use("/limited/*", streamLimit({ max: 4, retryAfterSeconds: 2 }));
app.get("/limited/rows", rows);

export default app;
