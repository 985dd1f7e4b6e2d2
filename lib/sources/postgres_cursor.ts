import type postgres from "postgres";
import { SluiceError } from "../errors.ts";
import { endReserved } from "./_end_reserved.ts";
import type { BatchSource, SourceBatch } from "./batch_source.ts";
import type { ChunkWriter } from "../formats/_chunk_writer.ts";
import { CopyJsonEncoder, jsonKindOf } from "../formats/copy_json.ts";
import type { JsonKind } from "../formats/copy_json.ts";
import { CopyReader } from "./_copy_reader.ts";
import { isConnectionError, reserveConnection, watchClose } from "./_postgres_pool.ts";
import type { CopyReadable, RowSink } from "./_copy_reader.ts";
import { normalizeQuery, runQuery, toJsonRows, wrapQuery } from "./postgres_query.ts";
import type { NormalQuery, Query, SqlQuery } from "./postgres_query.ts";

export type { Query, SqlQuery } from "./postgres_query.ts";

/**
 * The parts of a postgres.js instance (`postgres(url)`) that sluice uses; any postgres.js `Sql`
 * fits. Declared here rather than imported so the published API documents itself.
 */
export interface Sql {
  /** Builds a query from a tagged template. */
  // deno-lint-ignore no-explicit-any
  (template: TemplateStringsArray, ...parameters: any[]): SqlQuery;
  /** Builds a query from a SQL string (no parameters). */
  // deno-lint-ignore no-explicit-any
  unsafe(query: string, parameters?: any[]): SqlQuery;
  /** Takes a connection out of the pool until `release()`. */
  reserve(): Promise<unknown>;
  /** The instance's options (sluice reads `transform`). */
  readonly options: object;
}

/** A row as postgres.js parses it: column name → value. */
export interface Row {
  /** The column's value. */
  // deno-lint-ignore no-explicit-any
  [column: string]: any;
}

/** The postgres.js types sluice uses internally. */
// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type PgQuery = postgres.PendingQuery<any>;

/** A column as postgres.js describes it. */
export interface Column {
  /** The name, after postgres.js's `transform.column.from`. */
  name: string;
  /** The type's oid. */
  type: number;
  /** postgres.js's text parser for the type, if it has one. */
  parser?: ((raw: string) => unknown) & { array?: boolean };
}
/** A row as the server sent it: one text-format value per column, `null` for SQL NULL. */
export type RawRow = (Uint8Array | null)[];
/** Raw rows plus the columns they belong to. */
export interface RawBatchRows extends Array<RawRow> {
  /** Column descriptions of the rows. */
  columns?: readonly Column[];
}

/** Options of {@linkcode openPostgresCursor}. */
export interface PostgresCursorOptions<T = RawRow> {
  /**
   * Maps each raw row as it arrives off the wire (decode, encode …). Mapping per row, rather than
   * after the whole batch arrived, lets the raw `Uint8Array` views die young: holding a 2 MiB
   * batch of them costs ~8× its wire size in heap.
   */
  mapRow?: (row: RawRow, columns: readonly Column[]) => T;
  /** `SET LOCAL statement_timeout` for the cursor's transaction. */
  statementTimeoutMs?: number | undefined;
  /** Called once with the columns, before the first batch is returned. */
  onColumns?: (columns: readonly Column[]) => void;
  /**
   * `"values"` (default): the query's own columns. `"json"`: one text column per row holding
   * PostgreSQL's `row_to_json` of the row (what NDJSON and JSON output are made of).
   */
  output?: SourceOutput;
  /**
   * Read through `COPY (query) TO STDOUT` instead of a cursor when the query has no parameters —
   * what makes the byte formats as fast as `COPY` itself. With `format: "csv"` each row is the
   * row's CSV line as `COPY … (FORMAT csv)` prints it; with `"json"`, a line of COPY text format
   * that `writeJson` renders as the row's `row_to_json` text (only when every column is of a type
   * sluice renders; otherwise a cursor with `output: "json"`). The rows go to the request's sink.
   */
  copy?: CopyRequest;
  /**
   * Aborts the opening: the statement under way is cancelled and the open rejects with the
   * signal's reason, the connection freed. (A `COPY` answers nothing until its first row, so
   * without this a stream cancelled early would wait for the whole query.)
   */
  signal?: AbortSignal;
  /**
   * An exported snapshot (`pg_export_snapshot()`) to read in: the transaction begins as
   * `REPEATABLE READ READ ONLY` and adopts it (`SET TRANSACTION SNAPSHOT`), so that several
   * cursors on several connections read the same moment. Unset: `BEGIN READ ONLY`.
   */
  snapshot?: string;
}

/**
 * Asks a cursor source to read through `COPY` when it can (see `PostgresCursorOptions.copy`): the
 * format wanted, and where the rows go — through `COPY`, rows are not returned by `fetch` but
 * handed to the sink as they arrive (`fetch` reports their `count`).
 */
export interface CopyRequest {
  /**
   * `"csv"`: rows are CSV lines. `"json"`: rows are COPY text lines, rendered by `writeJson`.
   * `"text"`: rows are COPY text lines of the query's own columns.
   */
  format: "csv" | "json" | "text";
  /**
   * Called once the COPY is set up, with its encoding; returns the function each row is handed
   * to (its bytes are only valid during the call).
   */
  sink(encoding: CopyEncoding): RowSink;
}

/** How the rows of a source that reads through `COPY` are encoded (see `PostgresCursorOptions.copy`). */
export type CopyEncoding =
  | { format: "csv" }
  | { format: "text" }
  | {
    format: "json";
    /** Writes the `row_to_json` text (no line end) of the COPY text line `line[start, end)`. */
    writeJson(w: ChunkWriter, line: Uint8Array, start: number, end: number): void;
  };

/** What each raw row holds: the query's columns, or one `row_to_json` text. */
export type SourceOutput = "values" | "json";

/** A source of raw rows that also reports its columns once the first batch arrived. */
export interface PostgresSource<T = RawRow> extends BatchSource<T> {
  /** The columns of the rows (`undefined` before the first fetch). */
  columns(): readonly Column[] | undefined;
  /**
   * Runs another query in raw mode on the source's own connection, between fetches (how `include`
   * loads related rows without a second connection). Optional: without it, includes use the pool.
   */
  query?(query: NormalQuery): Promise<RawBatchRows>;
}

// One name is enough: each cursor lives in its own transaction on its own reserved connection, and
// a fixed name lets postgres.js reuse the prepared DECLARE for a repeated query.
const DECLARE_CURSOR = "declare sluice_cursor no scroll cursor for ";
const CURSOR_NAME = "sluice_cursor";

/**
 * Turns the errors a pooler causes when it splits the cursor's transaction across server
 * connections (`cursor "…" does not exist` 34000, `… can only be used in transaction blocks`
 * 25P01, PgBouncer's `… not allowed in statement pooling mode`) into `SluiceError("CURSOR_LOST")`
 * pointing to keyset mode; returns any other error unchanged.
 *
 * @param error What a cursor statement failed with.
 * @returns The error to throw.
 */
export function asCursorLost(error: unknown): unknown {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const pooled = code === "08P01" && typeof message === "string" &&
    message.includes("pooling mode");
  if (code !== "34000" && code !== "25P01" && !pooled) return error;
  return new SluiceError(
    "CURSOR_LOST",
    `Cannot keep a server-side cursor open through this connection: ${
      String(message)
    } (a transaction- or statement-mode pooler such as PgBouncer?); use strategy: "keyset" with a unique key`,
    { cause: error },
  );
}

export { isConnectionError } from "./_postgres_pool.ts";

/**
 * Opens a server-side cursor for `query` on a connection reserved from `sql`'s pool, inside a
 * read-only transaction, and returns a source whose fetches vary in size (`FETCH n`).
 *
 * Rows are returned raw — one `Uint8Array` of text-format bytes per value — so that byte counts are
 * exact and encoders can work on the server's own text; {@linkcode decodeRawRows} turns them into
 * the objects postgres.js would have produced.
 *
 * @param sql A postgres.js instance; one connection is reserved until the source is closed.
 * @param query The query.
 * @param options Statement timeout, column callback.
 * @returns An open source.
 *
 * @example Fetch twice with different sizes
 * ```ts ignore
 * const source = await openPostgresCursor(sql, sql`select * from orders`);
 * const first = await source.fetch(10);
 * const second = await source.fetch(5000);
 * await source.close();
 * ```
 */
export async function openPostgresCursor<T = RawRow>(
  sql: Sql,
  query: Query,
  options: PostgresCursorOptions<T> = {},
): Promise<PostgresSource<T>> {
  const plain = normalizeQuery(query);
  const rows = options.output === "json" ? toJsonRows(sql, plain) : plain;
  const signal = options.signal;
  signal?.throwIfAborted();
  // deno-lint-ignore no-explicit-any
  const reserved = await reserveConnection(sql, signal) as postgres.ReservedSql<any>;
  const name = CURSOR_NAME;
  let columns: readonly Column[] | undefined;
  let current: PgQuery | undefined;
  let inflight: Promise<unknown> | undefined;
  let closed = false;
  let began = false;
  let cancelling: Promise<unknown> | undefined;
  let copy: CopyReader | undefined;
  let copyQuery: PgQuery | undefined;
  // postgres.js 3.4.9: a query sent on a reserved connection whose socket closed while idle (a
  // pooler's idle_transaction_timeout, a restart, a killed backend) throws an uncaught TypeError
  // from a setImmediate ("reading 'write'"), crashing the process. Watch the connection's close
  // (through `onexecute`, as postgres.js's own `begin` does) and never talk to it afterwards.
  let lost: SluiceError | undefined;
  const watch = watchClose((e) =>
    lost = new SluiceError(
      "CURSOR_LOST",
      `Cannot fetch from the cursor as its connection closed between fetches (an idle transaction timeout or restart of a pooler or server?): cursor streams cannot resume; use strategy: "keyset" with a unique key`,
      { cause: e },
    )
  );

  // `target` is what a cancel must reach when `q` is not the query itself.
  const run = <R>(q: PromiseLike<R>, target: unknown = q): Promise<R> => {
    current = target as PgQuery;
    const p = Promise.resolve(q).catch((error) => {
      throw asCursorLost(error);
    });
    inflight = p.catch(() => {});
    return p.finally(() => {
      current = undefined;
    });
  };

  // Stops the opening: the statement the server runs is cancelled (it then fails, and the catch
  // below ends the transaction); between statements the next step sees the signal.
  const stopOpening = (): void => {
    if ((current as { active?: boolean } | undefined)?.active === true) {
      cancelOnce(current, current === copyQuery);
    }
  };
  const step = async <R>(q: PromiseLike<R>, target: unknown = q): Promise<R> => {
    signal?.throwIfAborted();
    const result = await run(q, target);
    signal?.throwIfAborted();
    return result;
  };
  signal?.addEventListener("abort", stopOpening, { once: true });
  try {
    const begin = options.snapshot === undefined
      ? "begin read only"
      : "begin isolation level repeatable read read only";
    // Counted as begun once sent: an abort can end the step after the server began the
    // transaction, and a ROLLBACK outside one is harmless.
    began = true;
    // deno-lint-ignore no-explicit-any
    await step(reserved.unsafe(begin, [], { onexecute: watch.onexecute } as any));
    if (options.snapshot !== undefined) {
      await step(
        reserved.unsafe(`set transaction snapshot '${options.snapshot.replace(/'/g, "''")}'`),
      );
    }
    if (options.statementTimeoutMs !== undefined) {
      await step(reserved.unsafe(`set local statement_timeout = ${options.statementTimeoutMs}`));
    }
    if (options.copy !== undefined) {
      const plan = await step(planCopy(sql, reserved, plain, options.copy.format));
      if (plan) {
        columns = plan.columns;
        options.onColumns?.(columns);
        const q = reserved.unsafe(plan.statement) as PgQuery & { resolve(value: unknown): void };
        copyQuery = q;
        // postgres.js 3.4.9 resolves the query with the COPY stream, and an error read in the same
        // socket chunk (a row failing early) is emitted on it before an awaiting caller could
        // listen: an 'error' without listener is thrown, crashing the process. So the reader is
        // attached inside the resolution itself.
        const mode = plan.encoding.format === "csv" ? "chunks" : "lines";
        const sink = options.copy.sink(plan.encoding);
        const resolve = q.resolve;
        q.resolve = (value) => {
          if (copy === undefined && typeof (value as CopyReadable | null)?.on === "function") {
            copy = new CopyReader(value as CopyReadable, mode, sink);
          }
          resolve(value);
        };
        // readable() returns a plain promise: the query itself is what a cancel must reach.
        await step(q.readable(), q);
      }
    }
    if (!copy) {
      await step(wrapQuery(reserved, [DECLARE_CURSOR, ""], rows).run);
    }
  } catch (error) {
    await end(error);
    throw error;
  } finally {
    signal?.removeEventListener("abort", stopOpening);
  }

  async function end(error?: unknown): Promise<void> {
    if (closed) return;
    closed = true;
    if (inflight) await inflight;
    if (copy && !copy.ended) {
      // Stopped early: cancel the COPY, then read on until the server ends it (it only sees the
      // cancel once it can write again).
      if (!lost) interruptCopy();
      await copy.drain();
    }
    if (copy && isConnectionError(copy.error)) error ??= copy.error;
    // A cancel request travels on its own connection and can reach the backend after the query it
    // targeted finished; released too early, the connection's next user (another stream's BEGIN or
    // DECLARE) gets the 57014. postgres.js resolves cancel() once the server closed the cancel
    // connection, i.e. after it signalled the backend, which ignores a cancel while idle.
    if (cancelling) await cancelling;
    await endReserved(
      reserved,
      !began ? "none" : error === undefined ? "commit" : "rollback",
      lost !== undefined || isConnectionError(error),
    );
  }

  // Sends the one cancel request of this source for `q`. One per source: a second one (a
  // disconnect cancels the body and aborts the request's signal) can land on the ROLLBACK after
  // the first was awaited, leaving the transaction aborted on a connection returned to the pool.
  // postgres.js 3.4.9: Query#cancel() returns null, not the pool's cancel promise, which settles
  // once the server has signalled the backend; end() must wait for that, or the signal can land on
  // the next statement of the connection's next user. So the canceller is called directly (and
  // cleared, as cancel() itself does). The canceller only sends a request for an `active` query;
  // a COPY query counts as settled once its stream started, so `running` flags it for the call.
  function cancelOnce(query: unknown, running: boolean): void {
    const q = query as
      | { active?: boolean; canceller?: ((q: unknown) => unknown) | null; cancel(): unknown }
      | undefined;
    if (!q || cancelling !== undefined) return;
    const canceller = q.canceller;
    if (typeof canceller !== "function") {
      cancelling = Promise.resolve(q.cancel()).catch(() => {});
      return;
    }
    q.canceller = null;
    const active = q.active;
    if (running) q.active = true;
    try {
      cancelling = Promise.resolve(canceller(q)).catch(() => {});
    } finally {
      q.active = active;
    }
  }

  function interruptCopy(): void {
    if (!copy?.ended) cancelOnce(copyQuery, true);
  }

  if (copy) {
    const reader = copy;
    return {
      columns: () => columns,
      // A dead connection fails the COPY stream itself (postgres.js destroys it with the error).
      fetch: (rows: number) => reader.read(rows) as unknown as Promise<SourceBatch<T>>,
      close: end,
      interrupt: interruptCopy,
    };
  }

  return {
    columns: () => columns,
    async fetch(rows: number): Promise<SourceBatch<T>> {
      if (lost) throw lost;
      const mapRow = options.mapRow;
      const out: T[] = [];
      let bytes = 0;
      const result = await run(
        reserved.unsafe(`fetch forward ${rows} from ${name}`).raw().forEach(
          // deno-lint-ignore no-explicit-any
          (row: any, res: any) => {
            const raw = row as RawRow;
            for (let j = 0; j < raw.length; j++) {
              const value = raw[j];
              if (value !== null && value !== undefined) bytes += value.length;
            }
            if (columns === undefined) {
              columns = (res.statement?.columns ?? []) as readonly Column[];
              options.onColumns?.(columns);
            }
            out.push(mapRow ? mapRow(raw, columns) : raw as T);
          },
        ),
      ) as unknown as { columns?: readonly Column[] | null };
      if (columns === undefined) {
        // No row arrived: the columns still come with the (empty) result.
        columns = result?.columns ?? [];
        options.onColumns?.(columns);
      }
      return { rows: out, bytes };
    },
    close: end,
    interrupt(): void {
      // postgres.js 3.4.9: cancelling a query before the connection has taken it (it hands queries
      // over a microtask later) marks it cancelled, and the reserved connection then refuses it and
      // wedges: every later query on it, our ROLLBACK included, waits forever. Only a query the
      // server is running (`active`) is cancelled; any other finishes on its own before close().
      if ((current as { active?: boolean } | undefined)?.active === true) {
        cancelOnce(current, false);
      }
    },
    query(query: NormalQuery): Promise<RawBatchRows> {
      if (lost) return Promise.reject(lost);
      return run(runQuery(reserved, query).raw()) as unknown as Promise<RawBatchRows>;
    },
  };
}

/** What {@linkcode planCopy} decided: the COPY statement, the columns and the rows' encoding. */
interface CopyPlan {
  statement: string;
  columns: readonly Column[];
  encoding: CopyEncoding;
}

/**
 * Decides whether a query can be read through `COPY (query) TO STDOUT`: it must have no
 * parameters (COPY takes none) and, for JSON, only columns whose `row_to_json` text sluice renders
 * from the COPY text (no column-name transform, `DateStyle` ISO when there are dates). Describes
 * the query on the reserved connection (one round trip, no execution).
 */
async function planCopy(
  sql: Sql,
  reserved: PgSql,
  query: NormalQuery,
  format: "csv" | "json" | "text",
): Promise<CopyPlan | undefined> {
  if (query.params !== undefined && query.params.length > 0) return undefined;
  const described = await runQuery(reserved, query).describe() as unknown as {
    string: string;
    types: readonly number[];
    columns: readonly Column[] | null;
  };
  if (described.types.length > 0 || !described.columns) return undefined;
  const columns = described.columns;
  const statement = `copy (\n${described.string}\n) to stdout (format ${
    format === "csv" ? "csv" : "text"
  })`;
  if (format === "csv") return { statement, columns, encoding: { format: "csv" } };
  if (format === "text") return { statement, columns, encoding: { format: "text" } };
  const transform = (sql.options as { transform?: { column?: { from?: unknown } } }).transform;
  if (transform?.column?.from) return undefined;
  const kinds: JsonKind[] = [];
  for (const column of columns) {
    const kind = jsonKindOf(column.type);
    if (kind === undefined) return undefined;
    kinds.push(kind);
  }
  if (kinds.some((k) => k === "date" || k === "timestamp" || k === "timestamptz")) {
    const [row] = await reserved.unsafe("select current_setting('DateStyle') as style");
    if (!String(row?.style).startsWith("ISO")) return undefined;
  }
  const encoder = new CopyJsonEncoder(columns.map((c, i) => ({ name: c.name, kind: kinds[i]! })));
  return {
    statement,
    columns,
    encoding: {
      format: "json",
      writeJson: encoder.writeLine.bind(encoder),
    },
  };
}

/** postgres.js's row transforms, as found on `sql.options.transform`. */
interface Transform {
  value?: { from?: (value: unknown, column: Column) => unknown };
  row?: { from?: (row: Record<string, unknown>) => unknown };
}

/**
 * Decodes raw rows into the objects postgres.js would have returned for the same query, applying
 * its type parsers and its `transform` options.
 *
 * @param sql The postgres.js instance the rows came from (for its transforms).
 * @param columns The columns of the rows.
 * @param rows Raw rows.
 * @returns Row objects.
 *
 * @example Decode a batch
 * ```ts ignore
 * const objects = decodeRawRows(sql, source.columns(), batch.rows);
 * ```
 */
export function decodeRawRows<T = Row>(
  sql: Sql,
  columns: readonly Column[],
  rows: readonly RawRow[],
): T[] {
  const decode = createRowDecoder<T>(sql);
  const out = new Array<T>(rows.length);
  for (let r = 0; r < rows.length; r++) out[r] = decode(rows[r]!, columns);
  return out;
}

/**
 * Returns a function that decodes one raw row into the object postgres.js would have returned,
 * applying its type parsers and its `transform` options (for {@linkcode openPostgresCursor}'s
 * `mapRow`).
 *
 * @param sql The postgres.js instance the rows come from (for its transforms).
 * @returns A row decoder.
 *
 * @example Decode rows as they arrive
 * ```ts ignore
 * const source = await openPostgresCursor(sql, "select 1 as one", { mapRow: createRowDecoder(sql) });
 * ```
 */
export function createRowDecoder<T = Row>(
  sql: Sql,
): (raw: RawRow, columns: readonly Column[]) => T {
  const transform = (sql.options as unknown as { transform?: Transform }).transform;
  const valueFrom = transform?.value?.from;
  const rowFrom = transform?.row?.from;
  const decoder = new TextDecoder();
  // postgres.js hands out Node-style Buffers; their utf8Slice is what the driver itself decodes
  // with and is several times faster than TextDecoder on short values. One source hands out one
  // kind of array, so the feature is checked on the first value only.
  let utf8Slice: ((this: Uint8Array, start: number, end: number) => string) | null | undefined;
  const text = (b: Uint8Array, from: number): string => {
    if (utf8Slice === undefined) {
      utf8Slice = (b as { utf8Slice?: typeof utf8Slice }).utf8Slice ?? null;
    }
    return utf8Slice
      ? utf8Slice.call(b, from, b.length)
      : decoder.decode(from ? b.subarray(from) : b);
  };
  return (raw, columns) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i]!;
      const bytes = raw[i];
      let value: unknown = null;
      if (bytes !== null && bytes !== undefined) {
        const parser = column.parser;
        // Mirrors postgres.js's DataRow: array parsers get the text without its leading "{".
        value = parser === undefined
          ? text(bytes, 0)
          : parser.array === true
          ? parser(text(bytes, 1))
          : parser(text(bytes, 0));
      }
      row[column.name] = valueFrom ? valueFrom(value, column) : value;
    }
    return (rowFrom ? rowFrom(row) : row) as T;
  };
}
