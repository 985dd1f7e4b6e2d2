// The adapter for Bun's built-in PostgreSQL client (`new SQL(url)` / `Bun.sql` from "bun"). It
// only feature-checks the instance it is given, so it loads (unused) on every runtime.
import type { SourceBatch } from "./batch_source.ts";
import type { Column, PostgresSource, RawRow, SourceOutput, SqlQuery } from "./postgres_cursor.ts";
import { normalizeQuery } from "./postgres_query.ts";

/**
 * The parts of a Bun `SQL` instance (Bun ≥ 1.2's built-in client) that sluice uses. Only its
 * PostgreSQL adapter can be streamed.
 */
export interface BunSql {
  /** Builds a lazy query from a tagged template. */
  // deno-lint-ignore no-explicit-any
  (template: TemplateStringsArray, ...parameters: any[]): SqlQuery;
  /** Builds a lazy query from a SQL string. */
  // deno-lint-ignore no-explicit-any
  unsafe(query: string, parameters?: any[]): SqlQuery;
  /** Takes a connection out of the pool until `release()`. */
  reserve(): Promise<unknown>;
  /** The instance's options; `adapter` tells which database it talks to. */
  readonly options: { readonly adapter?: string; readonly bigint?: boolean };
}

/** A Bun query, as much of it as sluice uses. */
// deno-lint-ignore no-explicit-any
type BunQuery = PromiseLike<any> & {
  cancel(): unknown;
  simple(): BunQuery;
  raw(): BunQuery;
};

/** A reserved Bun connection. */
interface BunReserved {
  // deno-lint-ignore no-explicit-any
  (template: TemplateStringsArray, ...parameters: any[]): BunQuery;
  // deno-lint-ignore no-explicit-any
  unsafe(query: string, parameters?: any[]): BunQuery;
  release(): void;
  close(): Promise<void>;
}

/** Options of {@linkcode openBunSqlCursor}. */
export interface BunSqlCursorOptions {
  /** `SET LOCAL statement_timeout` for the cursor's transaction. */
  statementTimeoutMs?: number | undefined;
  /** `"values"` (default) or `"json"` (one `row_to_json` text per row). */
  output?: SourceOutput;
}

/**
 * True when `sql` looks like a Bun `SQL` instance: callable, with `reserve()` and an
 * `options.adapter` string (postgres.js has no `adapter` option).
 *
 * @param sql Anything.
 * @returns Whether sluice should read it as Bun's client.
 */
export function isBunSql(sql: unknown): sql is BunSql {
  if (typeof sql !== "function") return false;
  const s = sql as unknown as Partial<BunSql>;
  return typeof s.reserve === "function" && typeof s.unsafe === "function" &&
    typeof s.options?.adapter === "string";
}

/** True for errors after which a Bun connection cannot be talked to any more. */
function isDeadConnection(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown } | null;
  const errno = e?.errno;
  return errno === "57P01" || errno === "57P02" || errno === "57P03" ||
    (typeof e?.code === "string" && /CONNECTION_CLOSED|ECONNRESET|EPIPE/.test(e.code));
}

const CURSOR_NAME = "sluice_cursor";

/**
 * Opens a server-side cursor on a connection reserved from a Bun `SQL` pool, inside a read-only
 * transaction. `FETCH n` runs over the simple query protocol, so every value arrives in text
 * format (Bun's extended protocol asks for binary), which is what byte counts and encoders need.
 *
 * @param sql A Bun `SQL` instance using the PostgreSQL adapter.
 * @param query A ``sql`…` `` query built by the same instance, a SQL string, `{ query, params }`
 *   or a compiled query.
 * @param options Statement timeout, output shape.
 * @returns An open source.
 * @throws {TypeError} When the instance talks to another database than PostgreSQL.
 *
 * @example Fetch a batch
 * ```ts ignore
 * import { SQL } from "bun";
 * const sql = new SQL(process.env.DATABASE_URL);
 * const source = await openBunSqlCursor(sql, sql`select * from orders`);
 * const batch = await source.fetch(100);
 * await source.close();
 * ```
 */
export async function openBunSqlCursor(
  sql: BunSql,
  query: unknown,
  options: BunSqlCursorOptions = {},
): Promise<PostgresSource> {
  if (sql.options.adapter !== "postgres") {
    throw new TypeError(
      `Cannot use sql as a PostgreSQL client: current value is a Bun SQL instance for ${sql.options.adapter}`,
    );
  }
  const normal = normalizeQuery(query);
  const plain = normal.fragment === undefined ? normal : undefined;
  const bigint = sql.options.bigint === true;
  const reserved = await sql.reserve() as BunReserved;
  let columns: readonly Column[] | undefined;
  let current: BunQuery | undefined;
  let inflight: Promise<unknown> | undefined;
  let closed = false;
  let began = false;

  const run = (q: BunQuery): Promise<unknown> => {
    current = q;
    const p = Promise.resolve(q);
    inflight = p.catch(() => {});
    return p.finally(() => {
      current = undefined;
    });
  };

  const declare = (): BunQuery => {
    const head = `declare ${CURSOR_NAME} no scroll cursor for `;
    if (plain !== undefined) {
      const text = options.output === "json"
        ? `select row_to_json(sluice_row.*)::text from (${plain.text}\n) as sluice_row`
        : plain.text;
      if (plain.params.length > 0) return reserved.unsafe(head + text, [...plain.params]);
      // Bun 1.4.5 sends `unsafe()` without parameters over the simple protocol, which runs every
      // statement of the text (a `commit; delete …` would leave the read-only transaction); a
      // tagged template goes through Parse, one statement only. Bun refuses an array as a
      // template unless its `raw` is not enumerable, as in a real template object.
      const strings = [head + text];
      Object.defineProperty(strings, "raw", { value: [head + text] });
      return reserved(strings as unknown as TemplateStringsArray);
    }
    // A Bun query nests inside another tagged template as a fragment, parameters included.
    return options.output === "json"
      ? reserved`declare sluice_cursor no scroll cursor for select row_to_json(sluice_row.*)::text from (${normal.fragment}) as sluice_row`
      : reserved`declare sluice_cursor no scroll cursor for ${normal.fragment}`;
  };

  async function end(error?: unknown): Promise<void> {
    if (closed) return;
    closed = true;
    if (inflight) await inflight;
    let dead = isDeadConnection(error);
    if (began && !dead) {
      try {
        await reserved.unsafe(error === undefined ? "commit" : "rollback").simple();
      } catch {
        dead = true;
      }
    }
    // Bun 1.4.5: a released connection whose backend died hands its death to the next query run
    // on it; closing it instead makes the pool open a fresh one.
    if (dead) await reserved.close().catch(() => {});
    else reserved.release();
  }

  try {
    await run(reserved.unsafe("begin read only").simple());
    began = true;
    if (options.statementTimeoutMs !== undefined) {
      await run(
        reserved.unsafe(`set local statement_timeout = ${options.statementTimeoutMs}`).simple(),
      );
    }
    await run(declare());
  } catch (error) {
    await end(error);
    throw error;
  }

  return {
    columns: () => columns,
    async fetch(rows: number): Promise<SourceBatch<RawRow>> {
      const result = await run(
        reserved.unsafe(`fetch forward ${rows} from ${CURSOR_NAME}`).simple().raw(),
      ) as RawRow[] & { columns?: { name: string; type: number }[] };
      if (columns === undefined) {
        columns = (result.columns ?? []).map((c) => {
          const column: Column = { name: c.name, type: c.type };
          const parser = bunTextParser(c.type, bigint);
          if (parser !== undefined) column.parser = parser;
          return column;
        });
      }
      let bytes = 0;
      for (let i = 0; i < result.length; i++) {
        const row = result[i]!;
        for (let j = 0; j < row.length; j++) {
          const value = row[j];
          if (value !== null && value !== undefined) bytes += value.length;
        }
      }
      return { rows: result, bytes };
    },
    close: end,
    interrupt(): void {
      current?.cancel();
    },
  };
}

type TextParser = (raw: string) => unknown;

const toNumber: TextParser = (raw) => Number(raw);
const toBool: TextParser = (raw) => raw === "t";
const toJson: TextParser = (raw) => JSON.parse(raw);
// "2024-01-02 03:04:05.123+05:30", "2024-01-02" and timestamps without a zone (read as UTC, as
// Bun does) become ISO strings every engine parses.
const toDate: TextParser = (raw) => {
  let iso = raw.replace(" ", "T");
  if (iso.length === 10) iso += "T00:00:00Z";
  else if (/[+-]\d\d$/.test(iso)) iso += ":00";
  else if (!/[+-]\d\d:\d\d(:\d\d)?$/.test(iso)) iso += "Z";
  return new Date(iso);
};
const toBytes: TextParser = (raw) => {
  const hex = raw.slice(2);
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
};

const SCALARS: Record<number, TextParser> = {
  16: toBool,
  21: toNumber,
  23: toNumber,
  26: toNumber,
  700: toNumber,
  701: toNumber,
  114: toJson,
  3802: toJson,
  1082: toDate,
  1114: toDate,
  1184: toDate,
  17: toBytes,
};
// Array oid → element oid, for the element types above plus text-like ones.
const ARRAYS: Record<number, number> = {
  1000: 16,
  1005: 21,
  1007: 23,
  1028: 26,
  1021: 700,
  1022: 701,
  199: 114,
  3807: 3802,
  1182: 1082,
  1115: 1114,
  1185: 1184,
  1001: 17,
  1016: 20,
  1231: 1700,
  1009: 25,
  1015: 1043,
  1014: 1042,
  2951: 2950,
};

/**
 * The text parser that gives what Bun's client returns for a type (the common built-in types;
 * others stay strings, as Bun leaves them).
 *
 * @param type The column's type oid.
 * @param bigint Bun's `bigint` option (int8 as `BigInt` instead of a string).
 * @returns A parser, or `undefined` to keep the text.
 */
export function bunTextParser(type: number, bigint = false): TextParser | undefined {
  if (type === 20) return bigint ? (raw) => BigInt(raw) : undefined;
  const scalar = SCALARS[type];
  if (scalar !== undefined) return scalar;
  const element = ARRAYS[type];
  if (element === undefined) return undefined;
  const inner = element === 20 && bigint ? (raw: string) => BigInt(raw) : SCALARS[element];
  return (raw) => parseArrayLiteral(raw, inner);
}

/**
 * Parses PostgreSQL's text form of an array (`{1,2,NULL,"a b",{3}}`) into nested arrays.
 *
 * @param raw The array's text.
 * @param parse The element parser (strings when `undefined`).
 * @returns The array.
 */
export function parseArrayLiteral(raw: string, parse?: TextParser): unknown[] {
  let i = raw.indexOf("{");
  const read = (): unknown[] => {
    const out: unknown[] = [];
    i++; // past "{"
    while (i < raw.length) {
      const ch = raw[i];
      if (ch === "}") {
        i++;
        return out;
      }
      if (ch === ",") {
        i++;
        continue;
      }
      if (ch === "{") {
        out.push(read());
        continue;
      }
      if (ch === '"') {
        let text = "";
        i++;
        while (i < raw.length && raw[i] !== '"') {
          if (raw[i] === "\\") i++;
          text += raw[i];
          i++;
        }
        i++; // past closing quote
        out.push(parse ? parse(text) : text);
        continue;
      }
      let end = i;
      while (end < raw.length && raw[end] !== "," && raw[end] !== "}") end++;
      const text = raw.slice(i, end);
      i = end;
      out.push(text === "NULL" ? null : parse ? parse(text) : text);
    }
    return out;
  };
  return read();
}
