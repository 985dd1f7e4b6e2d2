/** The parts of a postgres.js connection (internal) used here. */
interface Closable {
  /** Called by the pool when the connection's socket closed. */
  onclose?: ((error: unknown) => void) | null;
  /** Called by the pool to reconnect it, with the first waiting query or reservation. */
  connect(query: Initial): void;
}

/** A query or reservation a connection reconnects for (a reservation has `reserve`). */
interface Initial {
  reserve?: unknown;
  reject(error: unknown): void;
}

/**
 * postgres.js 3.4.9 keeps the error of a backend killed during a query and rejects the first
 * query or reservation the connection reconnects for with it (57P01). A reservation rejected that
 * way also stays in the pool's queue and is handed the connection later, which then is lost to
 * the pool for good. So the next reconnect for a reservation gets a stand-in that takes that stale
 * error; the reservation itself is served from the queue once the connection is open.
 */
function absorbStaleError(connection: Closable): void {
  const connect = connection.connect;
  connection.connect = function (query: Initial) {
    connection.connect = connect;
    if (query?.reserve === undefined) return connect.call(this, query);
    return connect.call(this, {
      reserve: query.reserve,
      reject: (error: unknown) => {
        const code = (error as { code?: unknown } | null)?.code;
        if (code !== "57P01" && code !== "57P02" && code !== "57P03") query.reject(error);
      },
    });
  };
}

/**
 * Runs `statement` on a reserved postgres.js connection and calls `onClose` if that connection's
 * socket closes afterwards (a killed backend, a restart, a pooler's idle timeout).
 *
 * postgres.js 3.4.9: a query sent on a reserved connection whose socket already closed throws an
 * uncaught TypeError ("reading 'write'") from a setImmediate, crashing the process; and nothing
 * tells the holder of a reserved connection that it closed while idle. The connection object is
 * reached through the `onexecute` query option and its `onclose` hook, as postgres.js's own
 * `begin()` does. The stale error postgres.js then keeps is absorbed (see `absorbStaleError`).
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
    if (watched !== undefined && typeof watched.connect === "function") absorbStaleError(watched);
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
