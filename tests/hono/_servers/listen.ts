// Serves a fetch handler on 127.0.0.1 and a free port with the runtime's own server: Deno.serve,
// Bun.serve, or @hono/node-server on Node. Resolves with the port. Not a test file.
import type { AddressInfo } from "node:net";

type Fetch = (request: Request) => Response | Promise<Response>;

/** Starts the server; resolves with its port once it listens. */
export async function listen(fetch: Fetch): Promise<number> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) {
    return await new Promise((resolve) => {
      g.Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen: ({ port }: { port: number }) => resolve(port),
      }, fetch);
    });
  }
  if (g.Bun) return g.Bun.serve({ hostname: "127.0.0.1", port: 0, fetch }).port;
  const { serve } = await import("@hono/node-server");
  return await new Promise((resolve) => {
    serve({ fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) => resolve(info.port));
  });
}

/** A server started by {@linkcode serve}. */
export interface Served {
  port: number;
  /** Stops listening and closes the connections still open. */
  stop(): Promise<void>;
}

/** Like {@linkcode listen}, for tests that serve in their own process and stop the server after. */
export async function serve(fetch: Fetch): Promise<Served> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) {
    let server: { shutdown(): Promise<void> } | undefined;
    const port = await new Promise<number>((resolve) => {
      server = g.Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen: ({ port }: { port: number }) => resolve(port),
      }, fetch);
    });
    return { port, stop: () => server!.shutdown() };
  }
  if (g.Bun) {
    const server = g.Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
    return { port: server.port, stop: () => Promise.resolve(server.stop(true)) };
  }
  const { serve: nodeServe } = await import("@hono/node-server");
  let server: { close(cb: () => void): void; closeAllConnections?(): void } | undefined;
  const port = await new Promise<number>((resolve) => {
    server = nodeServe(
      { fetch, hostname: "127.0.0.1", port: 0 },
      (info: AddressInfo) => resolve(info.port),
    ) as unknown as typeof server;
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server!.closeAllConnections?.();
        server!.close(() => resolve());
      }),
  };
}
