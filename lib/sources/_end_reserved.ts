import { isConnectionError } from "./_postgres_pool.ts";

/** The part of a postgres.js reserved connection that {@linkcode endReserved} uses. */
interface Reserved {
  unsafe(query: string): PromiseLike<unknown>;
  release(): void;
}

/**
 * Ends the transaction on a reserved postgres.js connection and hands the connection back to the
 * pool — unless it died, which is the one place both the cursor and ingest need two postgres.js
 * 3.4.9 workarounds:
 *
 * - `release()` on a reserved connection whose socket already closed puts the dead connection
 *   back in the pool's open queue, and the next query on the pool hangs forever. A closed
 *   connection is already in the pool's "closed" queue (and reconnects on demand), so it is not
 *   released.
 * - A cancel request travels on its own connection and can land on the ROLLBACK after the query it
 *   targeted finished (57014), leaving the transaction open: it is rolled back once more before the
 *   connection goes back to the pool.
 *
 * @param reserved The reserved connection.
 * @param end `"commit"`, `"rollback"`, or `"none"` when no transaction was begun.
 * @param connectionLost The connection is known to be dead: no SQL, no release.
 */
export async function endReserved(
  reserved: Reserved,
  end: "commit" | "rollback" | "none",
  connectionLost: boolean,
): Promise<void> {
  let alive = !connectionLost;
  if (alive && end !== "none") {
    try {
      await reserved.unsafe(end);
    } catch (e) {
      alive = !isConnectionError(e);
      if (alive) {
        await Promise.resolve(reserved.unsafe("rollback")).catch((e2) =>
          alive = !isConnectionError(e2)
        );
      }
    }
  }
  if (alive) reserved.release();
}
