import type postgres from "postgres";
import { isProtocolViolation, SluiceError } from "../errors.ts";
import type { RetryInfo, StreamOptions } from "../options.ts";
import type { SourceBatch } from "./batch_source.ts";
import { isConnectionError } from "./postgres_cursor.ts";
import type { Column, PostgresSource, RawRow, SourceOutput, Sql } from "./postgres_cursor.ts";
import { normalizeQuery, wrapQuery } from "./postgres_query.ts";
import type { NormalQuery, Query } from "./postgres_query.ts";

// deno-lint-ignore no-explicit-any
type PgSql = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type PgQuery = postgres.PendingQuery<any>;

/** Default number of retries of a keyset page after a connection failure. */
export const DEFAULT_KEYSET_RETRIES = 5;
/** Default backoff before the first retry of a keyset page, in ms (doubles each time). */
export const DEFAULT_KEYSET_RETRY_DELAY_MS = 100;
const MAX_RETRY_DELAY_MS = 5000;

/** The keyset part of the stream options, as given by the caller. */
export type KeysetOptionsInput = Pick<
  StreamOptions,
  "strategy" | "key" | "direction" | "after" | "retries" | "retryDelayMs" | "onRetry"
>;

/** Keyset options with defaults applied and checked. */
export interface ResolvedKeysetOptions {
  /** The key columns, at least one. */
  key: readonly string[];
  /** `"asc"` or `"desc"`. */
  direction: "asc" | "desc";
  /** Key values to start after (one per key column), if any. */
  after: readonly unknown[] | undefined;
  /** Retries of a page after a connection failure. */
  retries: number;
  /** First backoff, ms. */
  retryDelayMs: number;
  /** Called before each retry. */
  onRetry: ((info: RetryInfo) => void) | undefined;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(", ")}]`;
  return String(value);
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `Cannot use ${name} as a keyset option: current value is ${describe(value)}`,
    );
  }
  if (value < 0) {
    throw new RangeError(
      `Cannot use ${name} as a keyset option: it must be at least 0, current value is ${value}`,
    );
  }
  return value;
}

/**
 * Checks the keyset options of a stream and applies their defaults. The strategy is `"keyset"`
 * when `strategy: "keyset"` is set or when `key` is given without a strategy.
 *
 * @param options The caller's stream options.
 * @returns The resolved keyset options, or `undefined` for cursor mode.
 * @throws {TypeError | RangeError} On a bad key, direction, `after`, retry option, or keyset
 *   options combined with `strategy: "cursor"`.
 *
 * @example Key given: keyset mode
 * ```ts
 * import { resolveKeysetOptions } from "./postgres_keyset.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(resolveKeysetOptions({ key: "id" })?.key, ["id"]);
 * assert.equal(resolveKeysetOptions({}), undefined);
 * ```
 */
export function resolveKeysetOptions(
  options: KeysetOptionsInput,
): ResolvedKeysetOptions | undefined {
  const { strategy } = options;
  if (strategy !== undefined && strategy !== "cursor" && strategy !== "keyset") {
    throw new TypeError(
      `Cannot use strategy as a stream option: it must be "cursor" or "keyset", current value is ${
        describe(strategy)
      }`,
    );
  }
  const keysetOnly = ["key", "direction", "after", "retries", "retryDelayMs", "onRetry"] as const;
  if (strategy === "cursor") {
    for (const name of keysetOnly) {
      if (options[name] !== undefined) {
        throw new TypeError(
          `Cannot use ${name} with strategy "cursor": current value is ${
            describe(options[name])
          }, but only keyset streams use it`,
        );
      }
    }
    return undefined;
  }
  if (options.key === undefined) {
    if (strategy === "keyset") {
      throw new TypeError(
        `Cannot use strategy "keyset" without a key: current value of key is undefined`,
      );
    }
    for (const name of keysetOnly) {
      if (options[name] !== undefined) {
        throw new TypeError(
          `Cannot use ${name} without a key: current value is ${
            describe(options[name])
          }, but only keyset streams (key set) use it`,
        );
      }
    }
    return undefined;
  }
  const key = typeof options.key === "string" ? [options.key] : options.key;
  if (!Array.isArray(key) || key.length === 0) {
    throw new TypeError(
      `Cannot use key as a column name or list of column names: current value is ${
        describe(options.key)
      }`,
    );
  }
  for (const name of key) {
    if (typeof name !== "string" || name === "" || name.includes("\0")) {
      throw new TypeError(
        `Cannot use key as a column name or list of column names: current value is ${
          describe(options.key)
        }`,
      );
    }
  }
  if (new Set(key).size !== key.length) {
    throw new TypeError(
      `Cannot use key with a column named twice: current value is ${describe(options.key)}`,
    );
  }
  const direction = options.direction ?? "asc";
  if (direction !== "asc" && direction !== "desc") {
    throw new TypeError(
      `Cannot use direction as a keyset option: it must be "asc" or "desc", current value is ${
        describe(direction)
      }`,
    );
  }
  const after = options.after;
  if (after !== undefined) {
    if (!Array.isArray(after) || after.length !== key.length) {
      throw new TypeError(
        `Cannot use after as key values: it must be an array of ${key.length} value(s), one per key column, current value is ${
          describe(after)
        }`,
      );
    }
    if (after.some((v) => v === null || v === undefined)) {
      throw new TypeError(
        `Cannot use after as key values: keys are never NULL, current value is ${describe(after)}`,
      );
    }
  }
  if (options.onRetry !== undefined && typeof options.onRetry !== "function") {
    throw new TypeError(
      `Cannot use onRetry as a keyset option: current value is ${String(options.onRetry)}`,
    );
  }
  return {
    key,
    direction,
    after,
    retries: checkCount("retries", options.retries ?? DEFAULT_KEYSET_RETRIES),
    retryDelayMs: checkCount("retryDelayMs", options.retryDelayMs ?? DEFAULT_KEYSET_RETRY_DELAY_MS),
    onRetry: options.onRetry,
  };
}

/**
 * Sends a query as an unnamed statement even when the pool prepares statements (postgres.js's
 * default): a named statement is prepared on one server connection, and behind a transaction-mode
 * pooler the next page may land on another ("prepared statement … does not exist"). Parsing a page
 * again costs nothing next to its rows.
 */
function unprepared(query: PgQuery): PgQuery {
  (query as unknown as { options: { prepare?: boolean } }).options.prepare = false;
  return query;
}

/** Quotes a SQL identifier (the checks above already refused NUL). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * True for failures after which a keyset page can simply be run again on another connection:
 * the connection died (backend terminated, pooler restarted, socket reset) or could not be made.
 *
 * @param error What a page failed with.
 * @returns Whether a retry may succeed.
 */
export function isRetryableError(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code === "ECONNREFUSED" || code === "ETIMEDOUT" || code === "ENOTCONN") return true;
  if (isProtocolViolation(error)) return false;
  // Class 08 (connection exception). PgBouncer reports its own failures as 08P01 ("server conn
  // crashed?", "server login failed"); "… not allowed in statement pooling mode" never heals.
  return typeof code === "string" && code.startsWith("08") &&
    !(typeof message === "string" && message.includes("pooling mode"));
}

/** Options of {@linkcode fetchKeysetPage}. */
export interface KeysetPageOptions {
  /** Key columns. */
  key: readonly string[];
  /** `"asc"` or `"desc"`. */
  direction: "asc" | "desc";
  /** Key values to start after (raw text from an earlier page, or the caller's values). */
  after: readonly unknown[] | undefined;
  /** Rows wanted (the `LIMIT`). */
  limit: number;
  /** `"values"` or `"json"`. */
  output: SourceOutput;
  /** `SET LOCAL statement_timeout` for the page (then the page runs in its own transaction). */
  statementTimeoutMs?: number | undefined;
  /** Called once per row as it arrives, with the row without its key columns. */
  onRow: (row: RawRow, columns: readonly Column[], key: RawRow) => void;
  /** Receives the query in flight, so it can be cancelled. */
  onQuery?: (query: { cancel(): unknown } | undefined) => void;
}

/**
 * Runs one keyset page: `select … from (query) as sluice_k where (key) > (after) order by key
 * limit n` (`<` and `desc` for `direction: "desc"`), with the key columns appended to each row so
 * the next page can start after the last one; `onRow` gets each row without them.
 *
 * @param sql The postgres.js instance (any pooled connection serves the page).
 * @param query The user's query.
 * @param options Key, direction, start, limit, row shape, row callback.
 * @returns The user's columns (without the appended keys).
 */
export async function fetchKeysetPage(
  sql: Sql,
  query: NormalQuery,
  options: KeysetPageOptions,
): Promise<readonly Column[]> {
  const pg = sql as unknown as PgSql;
  const { key, direction, after, limit, onRow } = options;
  const keyRefs = key.map((k) => `sluice_k.${quoteIdentifier(k)}`);
  const head = options.output === "json"
    ? "select row_to_json(sluice_k.*)::text, "
    : "select sluice_k.*, ";
  const op = direction === "desc" ? "<" : ">";
  const order = keyRefs.map((k) => `${k} ${direction}`).join(", ");
  const strings: string[] = [`${head}${keyRefs.join(", ")} from (`];
  const values: unknown[] = [];
  if (after === undefined) {
    strings.push(`) as sluice_k order by ${order} limit `);
  } else {
    strings.push(`) as sluice_k where (${keyRefs.join(", ")}) ${op} (`);
    for (let i = 0; i < after.length; i++) {
      values.push(after[i]);
      strings.push(i === after.length - 1 ? `) order by ${order} limit ` : ", ");
    }
  }
  values.push(limit);
  strings.push("");
  const k = key.length;
  let columns: readonly Column[] | undefined;
  const build = (db: PgSql): PgQuery =>
    unprepared(wrapQuery(db, strings, query, values).run).raw().forEach(
      // deno-lint-ignore no-explicit-any
      (row: any, res: any) => {
        const raw = row as RawRow;
        if (columns === undefined) {
          const all = (res.statement?.columns ?? []) as readonly Column[];
          columns = all.slice(0, all.length - k);
        }
        const keys = raw.splice(raw.length - k, k);
        onRow(raw, columns, keys);
      },
    ) as unknown as PgQuery;
  const run = async (q: PgQuery): Promise<readonly Column[]> => {
    options.onQuery?.(q);
    try {
      const result = await q as unknown as { columns?: readonly Column[] | null } | undefined;
      if (columns === undefined) {
        const all = result?.columns ?? [];
        columns = all.slice(0, Math.max(0, all.length - k));
      }
      return columns;
    } finally {
      options.onQuery?.(undefined);
    }
  };
  if (options.statementTimeoutMs === undefined) return await run(build(pg));
  return await pg.begin(async (tx) => {
    await tx.unsafe(`set local statement_timeout = ${options.statementTimeoutMs}`);
    return await run(build(tx as unknown as PgSql));
  }) as readonly Column[];
}

/**
 * Checks whether any row of the query has a NULL in a key column (run once, when a keyset stream
 * ends: rows with a NULL key fall outside every `where (key) > (…)` page and would be skipped
 * silently).
 *
 * @param sql The postgres.js instance.
 * @param query The user's query.
 * @param key The key columns.
 * @returns True when such a row exists.
 */
async function hasNullKey(sql: Sql, query: NormalQuery, key: readonly string[]): Promise<boolean> {
  const test = key.map((k) => `sluice_k.${quoteIdentifier(k)} is null`).join(" or ");
  const strings = ["select 1 from (", `) as sluice_k where ${test} limit 1`];
  const rows = await unprepared(wrapQuery(sql, strings, query).run);
  return rows.length > 0;
}

function nullKeyError(key: readonly string[]): SluiceError {
  return new SluiceError(
    "KEYSET_NULL_KEY",
    `Cannot page by key (${
      key.join(", ")
    }) as a row has a NULL in it: current value is NULL, but keyset streams need NOT NULL key columns`,
  );
}

function sameBytes(a: RawRow, b: RawRow): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/** A keyset source, which also tells where its last page ended. */
export interface KeysetSource<T = RawRow> extends PostgresSource<T> {
  /**
   * The keys (as the server's text) of the last two rows of the last page, oldest first: what
   * `after` must be to continue after either (pagination fetches one row more than it shows).
   */
  tailKeys(): readonly (readonly string[])[];
}

/** Options of {@linkcode openPostgresKeyset}. */
export interface PostgresKeysetOptions<T = RawRow> extends ResolvedKeysetOptions {
  /** `"values"` (default) or `"json"` (one `row_to_json` text of the user's row). */
  output?: SourceOutput;
  /** `SET LOCAL statement_timeout` for each page (each page then runs in its own transaction). */
  statementTimeoutMs?: number | undefined;
  /** Maps each raw row (without the key columns) as it arrives. */
  mapRow?: (row: RawRow, columns: readonly Column[]) => T;
}

/**
 * Opens a keyset source: each `fetch(n)` runs one short statement through the pool,
 * `select … from (query) as sluice_k where (key) > (last key) order by key limit n`, so no
 * connection or transaction is held between fetches (it works behind PgBouncer in transaction
 * mode). A page that fails on a connection error is retried after the last delivered key, with
 * backoff, up to `retries` times; rows are never repeated or skipped.
 *
 * The key columns must be unique and NOT NULL: a NULL key fails the stream with
 * `SluiceError("KEYSET_NULL_KEY")` (checked on every row and, when the stream ends, once over the
 * whole query); two equal keys in one page fail it with `"KEYSET_DUPLICATE_KEY"` (rows with equal
 * keys that straddle two pages cannot be seen and would be skipped — hence the requirement).
 *
 * @param sql A postgres.js instance; each page takes any free connection of its pool.
 * @param query The user's query (without `ORDER BY`: the page orders by the key).
 * @param options Key, direction, start, retries, row shape.
 * @returns An open source.
 *
 * @example Two pages
 * ```ts ignore
 * const source = await openPostgresKeyset(sql, "select * from orders", resolveKeysetOptions({ key: "id" })!);
 * const first = await source.fetch(100);
 * const second = await source.fetch(5000);
 * await source.close();
 * ```
 */
export function openPostgresKeyset<T = RawRow>(
  sql: Sql,
  query: Query,
  options: PostgresKeysetOptions<T>,
): Promise<KeysetSource<T>> {
  const normal = normalizeQuery(query);
  const { key, direction, retries, retryDelayMs, onRetry, mapRow } = options;
  const output = options.output ?? "values";
  let after: readonly unknown[] | undefined = options.after;
  let columns: readonly Column[] | undefined;
  let current: { cancel(): unknown } | undefined;
  let inflight: Promise<unknown> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  let tail: string[][] = [];
  const decoder = new TextDecoder();

  async function page(n: number): Promise<SourceBatch<T>> {
    const out: T[] = [];
    let bytes = 0;
    let last: RawRow | undefined;
    let beforeLast: RawRow | undefined;
    let problem: SluiceError | undefined;
    const cols = await fetchKeysetPage(sql, normal, {
      key,
      direction,
      after,
      limit: n,
      output,
      statementTimeoutMs: options.statementTimeoutMs,
      onQuery: (q) => current = q,
      onRow(raw, rowColumns, keys) {
        if (problem) return;
        for (let i = 0; i < keys.length; i++) {
          if (keys[i] === null || keys[i] === undefined) return void (problem = nullKeyError(key));
        }
        if (last !== undefined && sameBytes(last, keys)) {
          problem = new SluiceError(
            "KEYSET_DUPLICATE_KEY",
            `Cannot page by key (${key.join(", ")}) as two rows share the key value ${
              describe(keys.map((v) => decoder.decode(v!)))
            }: current key is not unique; add a unique tie-breaking column such as the primary key`,
          );
          return;
        }
        beforeLast = last;
        last = keys;
        for (let j = 0; j < raw.length; j++) {
          const value = raw[j];
          if (value !== null && value !== undefined) bytes += value.length;
        }
        out.push(mapRow ? mapRow(raw, rowColumns) : raw as T);
      },
    });
    if (problem) throw problem;
    // A short page ends the stream: make sure no row was skipped for a NULL key.
    if (out.length < n && await hasNullKey(sql, normal, key)) throw nullKeyError(key);
    columns ??= cols;
    if (last !== undefined) after = last.map((v) => decoder.decode(v!));
    tail = [beforeLast, last].filter((k) => k !== undefined).map((k) =>
      k!.map((v) => decoder.decode(v!))
    );
    return { rows: out, bytes };
  }

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function fetch(n: number): Promise<SourceBatch<T>> {
    for (let attempt = 0;; attempt++) {
      try {
        return await page(n);
      } catch (error) {
        if (isMissingKeyError(error)) throw await missingKeyError(sql, normal, key, error);
        if (stopped || !isRetryableError(error)) throw error;
        if (attempt >= retries) {
          throw new SluiceError(
            "CONNECTION_LOST",
            `Cannot continue the keyset stream as its connection failed ${attempt + 1} time(s): ${
              (error as Error)?.message ?? String(error)
            }`,
            { cause: error },
          );
        }
        const delayMs = Math.min(retryDelayMs * 2 ** attempt, MAX_RETRY_DELAY_MS);
        onRetry?.({ attempt: attempt + 1, retries, delayMs, error });
        await sleep(delayMs);
        if (stopped) throw error;
      }
    }
  }

  return Promise.resolve({
    columns: () => columns,
    tailKeys: () => tail,
    fetch(n: number): Promise<SourceBatch<T>> {
      const p = fetch(n);
      inflight = p.catch(() => {});
      return p;
    },
    async close(): Promise<void> {
      stopped = true;
      wake?.();
      if (inflight) await inflight;
    },
    interrupt(): void {
      stopped = true;
      current?.cancel();
      wake?.();
    },
  });
}

// A key column the query's result lacks: PostgreSQL names it through sluice's own alias.
function isMissingKeyError(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === "42703" && typeof message === "string" && message.includes("sluice_k.");
}

/** The error for a key that is not a column of the result, naming the columns there are. */
async function missingKeyError(
  sql: Sql,
  query: NormalQuery,
  key: readonly string[],
  cause: unknown,
): Promise<TypeError> {
  let names = "";
  try {
    const probe = wrapQuery(sql, ["select * from (", ") as sluice_k limit 0"], query).run;
    const result = await probe as unknown as { columns?: readonly { name: string }[] };
    names = (result.columns ?? []).map((c) => c.name).join(", ");
  } catch { /* the message then names the key alone */ }
  return new TypeError(
    `Cannot use key (${key.join(", ")}) for keyset pages: the query's result has no column ${
      key.length > 1 ? "named by one of them" : "of that name"
    }${names ? `; its columns are ${names}` : ""} (key names the result's columns as SQL names)`,
    { cause },
  );
}
