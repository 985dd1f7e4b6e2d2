import { isConnectionError } from "./postgres_cursor.ts";

/** A postgres.js instance, as far as reserving a connection goes. */
interface Reservable<R> {
  reserve(): Promise<R>;
}

/**
 * Reserves a connection from a postgres.js pool, retrying once when the reservation fails with a
 * connection-loss error.
 *
 * postgres.js 3.4.9 keeps the error of a connection whose backend was killed during a query and
 * rejects the first use of that connection after it reconnects with it (57P01), although the
 * new session is fine: the second attempt gets a working connection.
 *
 * @param sql The pool.
 * @returns The reserved connection.
 */
export async function reserveConnection<R>(sql: Reservable<R>): Promise<R> {
  try {
    return await sql.reserve();
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    return await sql.reserve();
  }
}
