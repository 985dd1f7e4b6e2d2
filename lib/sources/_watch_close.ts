import { guardReconnect } from "./_postgres_pool.ts";

/** The parts of a postgres.js connection (internal) used here. */
interface Closable {
  /** Called by the pool when the connection's socket closed. */
  onclose?: ((error: unknown) => void) | null;
}

/**
 * Runs `statement` on a reserved postgres.js connection and calls `onClose` if that connection's
 * socket closes afterwards (a killed backend, a restart, a pooler's idle timeout).
 *
 * postgres.js 3.4.9: a query sent on a reserved connection whose socket already closed throws an
 * uncaught TypeError ("reading 'write'") from a setImmediate, crashing the process; and nothing
 * tells the holder of a reserved connection that it closed while idle. The connection object is
 * reached through the `onexecute` query option and its `onclose` hook, as postgres.js's own
 * `begin()` does. The pool's reconnect of it is then guarded (see `guardReconnect`).
 *
 * @param reserved The reserved connection.
 * @param statement The first statement (`begin`).
 * @param onClose Called once, with postgres.js's error, if the connection closes.
 * @returns Stops watching (call it before the connection goes back to the pool).
 */
export async function runWatchingClose(
  reserved: { unsafe(query: string, parameters: unknown[], options: object): PromiseLike<unknown> },
  statement: string,
  onClose: (error: unknown) => void,
): Promise<() => void> {
  let watched: Closable | undefined;
  const listener = (error: unknown) => {
    if (watched !== undefined) guardReconnect(watched);
    onClose(error);
  };
  await reserved.unsafe(statement, [], {
    onexecute: (connection: Closable) => {
      watched = connection;
      connection.onclose = listener;
      return true;
    },
  });
  return () => {
    if (watched?.onclose === listener) watched.onclose = null;
  };
}
