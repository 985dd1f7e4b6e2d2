/**
 * The parts of a Hono `Context` the adapters use; any Hono `Context` fits. Declared here rather
 * than imported so the published API documents itself.
 */
export interface StreamContext {
  /** The request. */
  readonly req: {
    /** The underlying Web `Request` (its `signal` aborts when the client goes away). */
    readonly raw: Request;
    /** The request method (`HEAD` for a HEAD request even though Hono routes it to GET). */
    readonly method: string;
    /** A query parameter. */
    query(key: string): string | undefined;
    /** A request header. */
    header(name: string): string | undefined;
  };
  /** The response so far; middleware replaces it after `next()`. */
  res: Response;
  /** Builds a response that keeps the headers set earlier with `c.header()`. */
  body(
    data: ReadableStream<Uint8Array> | string | null,
    // deno-lint-ignore no-explicit-any
    status: any,
    headers: Record<string, string>,
  ): Response;
}

/** Hono's `Next`: runs the rest of the middleware chain and the handler. */
export type StreamNext = () => Promise<void>;

/** A Hono middleware handler, as accepted by `app.use()`. */
export type StreamMiddleware = (c: StreamContext, next: StreamNext) => Promise<Response | void>;
