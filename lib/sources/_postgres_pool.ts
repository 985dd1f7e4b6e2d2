/**
 * How sluice takes connections out of a postgres.js pool and keeps the pool healthy when one dies
 * under a stream (a killed backend, a failover, a server restart).
 *
 * postgres.js 3.4.9 keeps the error a killed backend sent last (its `errorResponse`) across the
 * reconnect and hands it to whatever the connection serves first once it is back. A plain query
 * just fails with it, but a `reserve()` waiting in the pool's queue is rejected and then, the same
 * moment, handed the fresh connection, which is thereby lost: a few kills and the pool is empty.
 * `guardReconnect` is the one touch of the pool's internals this needs; `reserveConnection`
 * retries a reservation that such a stale error rejected anyway.
 */

/** True for errors after which the connection cannot be talked to any more. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" ||
    code === "CONNECTION_DESTROYED" || code === "CONNECT_TIMEOUT" || code === "57P01" ||
    code === "57P02" || code === "57P03" || code === "ECONNRESET" || code === "EPIPE";
}

/** A postgres.js pool connection, as `onexecute` hands it out (internal, postgres.js 3.4.x). */
interface PoolConnection {
  connect?: (initial: unknown) => void;
  reserved?: (() => void) & { release?: boolean } | null;
  onclose?: ((error: unknown) => void) | null;
}

/** A `reserve()` waiting in the pool (internal, postgres.js 3.4.x). */
interface QueuedReservation {
  reserve(connection: unknown): void;
  reject(error: unknown): void;
}

/**
 * Called from a connection's `onclose` (postgres.js 3.4.9): makes its next reconnect safe for a
 * waiting `reserve()`. Two hazards meet there: the stale error described above, and the type
 * fetch every new connection makes first, after which postgres.js serves the pool's queue but no
 * longer the reservation it reconnected for. The pool reconnects a closed connection either for a
 * reservation that stays in its queue (`reserve()` found no open connection) or for a request it
 * takes off the queue (synchronously, inside `onclose`). Either way the connection now reconnects
 * with nothing to serve first, so the stale error meets nobody; a queued reservation is then
 * served from the queue, and one taken off it is handed the connection here once the connection
 * is ready (or rejected if it closes first). Any other request is left as it was (a query may
 * fail once with the stale error, as it does without sluice).
 *
 * @param connection The connection that closed (from `onexecute`).
 */
export function guardReconnect(connection: object): void {
  const c = connection as PoolConnection;
  const connect = c.connect;
  if (typeof connect !== "function" || Object.hasOwn(connect, GUARDED)) return;
  let inClose = true;
  queueMicrotask(() => inClose = false);
  const guarded = (initial: unknown): void => {
    c.connect = connect;
    const waiting = initial as Partial<QueuedReservation> | null;
    if (typeof waiting?.reserve !== "function" || typeof waiting.reject !== "function") {
      return connect.call(c, initial);
    }
    if (inClose) {
      const reservation = waiting as QueuedReservation;
      let handed = false;
      // postgres.js calls a reserved connection's `reserved()` once it is ready for a query;
      // `release: true` makes it do so even while no transaction is open.
      c.reserved = Object.assign(() => {
        handed = true;
        c.reserved = null;
        reservation.reserve(c);
      }, { release: true });
      c.onclose = (error) => {
        if (!handed) handed = true, reservation.reject(error);
      };
    }
    connect.call(c, null);
  };
  Object.defineProperty(guarded, GUARDED, { value: true });
  c.connect = guarded;
}

const GUARDED = Symbol("sluice.guardReconnect");

/**
 * Watches the connection a statement runs on, through the `onexecute` query option (as
 * postgres.js's own `begin()` reaches it, 3.4.x): `onClose` is called if its socket closes (a
 * killed backend, a restart, a pooler's idle timeout), and its reconnect is guarded. postgres.js
 * tells the holder of a reserved connection nothing when it closes while idle, and a statement
 * sent on it then throws an uncaught TypeError ("reading 'write'") from a setImmediate.
 *
 * @param onClose Called once, with postgres.js's error, if the connection closes.
 * @returns `onexecute` for the first statement's options, and `unwatch` (call it before the
 *   connection goes back to the pool).
 */
export function watchClose(
  onClose: (error: unknown) => void,
): { onexecute: (connection: object) => boolean; unwatch: () => void } {
  let watched: { onclose?: ((error: unknown) => void) | null } | undefined;
  const listener = (error: unknown): void => {
    if (watched !== undefined) guardReconnect(watched);
    onClose(error);
  };
  return {
    onexecute(connection) {
      watched = connection as typeof watched;
      watched!.onclose = listener;
      return true;
    },
    unwatch() {
      if (watched?.onclose === listener) watched.onclose = null;
    },
  };
}

/** The part of a postgres.js instance {@linkcode reserveConnection} uses. */
interface Reservable {
  reserve(): Promise<unknown>;
}

/**
 * Takes a connection out of the pool (`sql.reserve()`), retrying when the reservation is rejected
 * with a dead connection's stale error (see above), and giving up at once when `signal` aborts: a
 * reservation still queued in the pool is then released as soon as the pool hands it over.
 *
 * @param sql A postgres.js instance.
 * @param signal Aborts the wait.
 * @returns The reserved connection.
 * @throws The signal's reason, or what the pool failed with.
 */
export async function reserveConnection(sql: Reservable, signal?: AbortSignal): Promise<unknown> {
  for (let attempt = 1;; attempt++) {
    const reserving = sql.reserve();
    try {
      const reserved = await untilAborted(reserving, signal);
      resetBackoff(sql);
      return reserved;
    } catch (error) {
      if (signal?.aborted) {
        reserving.then((r) => (r as { release(): void }).release(), () => {});
        throw error;
      }
      // Only a stale error can reject a reservation whose connection then comes back healthy.
      const code = (error as { code?: unknown } | null)?.code;
      const stale = code === "57P01" || code === "57P02";
      if (!stale || attempt >= 3) throw error;
    }
  }
}

/**
 * postgres.js 3.4.9 counts connection failures pool-wide (`options.shared.retries`) to back off
 * its reconnects, but resets the count only on a reconnect made for a plain query: after a few
 * killed backends a reconnect for a reservation waits seconds, then tens of seconds. A reservation
 * that succeeded shows the server is reachable, so the count starts again.
 */
function resetBackoff(sql: Reservable): void {
  const shared = (sql as { options?: { shared?: { retries?: number } } }).options?.shared;
  if (shared && typeof shared.retries === "number") shared.retries = 0;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
