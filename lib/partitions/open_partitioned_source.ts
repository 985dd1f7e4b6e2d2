import type postgres from "postgres";
import { SluiceError } from "../errors.ts";
import { endReserved } from "../sources/_end_reserved.ts";
import { openPostgresSource } from "../sources/open_postgres_source.ts";
import type { PostgresSourceOptions } from "../sources/open_postgres_source.ts";
import { isConnectionError } from "../sources/postgres_cursor.ts";
import { normalizeQuery } from "../sources/postgres_query.ts";
import { reserveConnection } from "../sources/_postgres_pool.ts";
import type { PostgresSource, Query, RawRow, Sql } from "../sources/postgres_cursor.ts";
import { PartMerger } from "./merge_parts.ts";
import type { MergeStats } from "./merge_parts.ts";
import { resolvePartitionOptions } from "./partition_options.ts";
import { planParts } from "./plan_parts.ts";
import { isTableQuery } from "./table_query.ts";
import type { TableQuery } from "./table_query.ts";

// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;

/**
 * Opens a partitioned read: a leader transaction (`REPEATABLE READ READ ONLY` on its own reserved
 * connection) exports its snapshot and plans the parts inside it; each part then opens as a normal
 * cursor source (COPY where it can) on its own connection, in that snapshot
 * (`SET TRANSACTION SNAPSHOT`); once every part has started the leader commits and its connection
 * goes back to the pool. So `partitions + 1` connections are taken while it starts and
 * `partitions` while it streams.
 *
 * @param sql A postgres.js instance.
 * @param query The user's query (split by `partitionKey`) or table query (split by `ctid` pages).
 * @param options The stream options, with `partitions` > 1.
 * @returns One source over all parts; fetches return rows as any part produces them (or in range
 *   order with `ordered`).
 * @throws {SluiceError} `SNAPSHOT_NOT_SHAREABLE` behind a pooler; `PARTITIONS_UNSUPPORTED` for a
 *   key or relation that cannot be split.
 */
export async function openPartitionedSource<T = RawRow>(
  sql: Sql,
  query: Query | TableQuery,
  options: PostgresSourceOptions<T>,
): Promise<PostgresSource<T> & { stats(): MergeStats }> {
  const { partitions, partitionKey, ordered, partitionBufferBytes, onSnapshot } =
    resolvePartitionOptions(options);
  const max = (sql.options as { max?: number }).max;
  if (typeof max === "number" && max < partitions + 1) {
    throw new RangeError(
      `Cannot use partitions as more connections than the pool has: it needs ${
        partitions + 1
      } while it starts (max is ${max}), current value is ${partitions}`,
    );
  }
  const fragment = isTableQuery(query) ? query : normalizeQuery(query);
  const leader = await reserveConnection(sql) as Awaited<ReturnType<PgSql["reserve"]>>;
  let began = false;
  let leaderLost = false;
  const onLeader = <R>(q: PromiseLike<R>): Promise<R> =>
    Promise.resolve(q).catch((error) => {
      leaderLost ||= isConnectionError(error);
      throw error;
    });
  const opened: PostgresSource<T>[] = [];
  try {
    await onLeader(leader.unsafe("begin isolation level repeatable read read only"));
    began = true;
    const result = await onLeader(leader.unsafe(
      "select pg_export_snapshot() as snapshot, pg_backend_pid() as pid",
    ));
    // postgres.js 3.4.9 puts the BackendKeyData it got at connect time on each result (`state`).
    // A pooler answers the handshake itself with a key of its own, so the pid differs from the
    // backend's: the parts' connections would not be tied to a session of the leader's server.
    const state = (result as unknown as { state?: { pid?: number | null } }).state;
    const row = result[0] as unknown as { snapshot: string; pid: number };
    if (state?.pid != null && state.pid !== row.pid) {
      throw new SluiceError(
        "SNAPSHOT_NOT_SHAREABLE",
        `Cannot share a snapshot between the parts of a partitioned stream through this connection: it goes through a pooler (backend pid ${row.pid}, connection key pid ${state.pid}), where snapshots cannot be shared; connect directly to PostgreSQL or drop partitions`,
      );
    }
    await onSnapshot?.(row.snapshot);
    const queries = await onLeader(planParts(sql, leader, fragment, partitions, partitionKey));
    const merger = new PartMerger<T>(
      queries.length,
      ordered,
      partitionBufferBytes,
      options.mapRow,
      options.copyAs,
    );
    const settled = await Promise.allSettled(queries.map((q, i) =>
      openPostgresSource<T>(sql, q, {
        ...options,
        partitions: 1,
        snapshot: row.snapshot,
        ...merger.partOptions(i),
      }).then((source) => (opened.push(source), source))
    ));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await endReserved(leader, "commit", false);
    began = false;
    return merger.source(
      settled.map((s) => (s as PromiseFulfilledResult<PostgresSource<T>>).value),
    );
  } catch (error) {
    const sibling = new Error("Another part of the partitioned stream failed to start");
    await Promise.all(opened.map((s) => s.close(sibling)));
    await endReserved(leader, began ? "rollback" : "none", leaderLost);
    throw error;
  }
}
