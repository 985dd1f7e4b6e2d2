import type { Column, PostgresSource, RawRow, SourceOutput } from "./postgres_cursor.ts";
import type { SourceBatch } from "./batch_source.ts";
import { toTextQuery } from "./postgres_query.ts";

/**
 * The parts of a PGlite instance (`new PGlite()` from `@electric-sql/pglite`) that sluice uses.
 * Declared here so sluice never imports PGlite: pass your own instance.
 */
export interface PGliteDatabase {
  /** Runs one statement. */
  // deno-lint-ignore no-explicit-any
  query(query: string, params?: any[], options?: any): Promise<PGliteResults>;
  /** Runs `callback` in a transaction holding PGlite's only connection. */
  // deno-lint-ignore no-explicit-any
  transaction(callback: (tx: any) => Promise<any>): Promise<any>;
  /** Resolves once the database has started. */
  readonly waitReady: Promise<void>;
}

/** A query result as PGlite returns it. */
export interface PGliteResults {
  /** The rows. */
  rows: unknown[];
  /** The columns. */
  fields: { name: string; dataTypeID: number }[];
}

/** A PGlite transaction, as much of it as sluice uses. */
interface PGliteTransaction {
  // deno-lint-ignore no-explicit-any
  query(query: string, params?: any[], options?: any): Promise<PGliteResults>;
}

export type { ParameterizedQuery } from "./postgres_query.ts";

/** Options of {@linkcode openPGliteCursor}. */
export interface PGliteCursorOptions {
  /** `SET LOCAL statement_timeout` for the cursor's transaction. */
  statementTimeoutMs?: number | undefined;
  /** `"values"` (default) or `"json"` (one `row_to_json` text per row). */
  output?: SourceOutput;
}

type Parser = (value: string, type: number) => unknown;

/**
 * True when `db` looks like a PGlite instance (feature check, no import of PGlite).
 *
 * @param db Anything.
 * @returns Whether sluice should read it as PGlite.
 */
export function isPGlite(db: unknown): db is PGliteDatabase {
  const d = db as Partial<PGliteDatabase> & { exec?: unknown } | null;
  return typeof d === "object" && d !== null && typeof d.query === "function" &&
    typeof d.transaction === "function" && typeof d.exec === "function" && "waitReady" in d;
}

// PGlite parses text values with the parser registered for the type's oid and leaves types without
// one as strings. Mapping every oid it knows to the identity keeps the server's text.
function rawParsers(db: PGliteDatabase): Record<string, (value: string) => string> {
  const identity = (value: string): string => value;
  const out: Record<string, (value: string) => string> = {};
  const known = (db as { parsers?: Record<string, unknown> }).parsers ?? {};
  for (const key of Object.keys(known)) out[key] = identity;
  return out;
}

const CURSOR_NAME = "sluice_cursor";

/**
 * Opens a cursor on a PGlite instance: a read-only transaction (PGlite's `transaction()`),
 * `DECLARE … NO SCROLL CURSOR` and `FETCH n`, returning the server's text values as bytes like the
 * postgres.js cursor does.
 *
 * PGlite has one connection: while the stream is open its transaction holds it, and every other
 * query on the same instance waits until the stream ends (is read to the end, cancelled, aborted
 * or times out). A second stream therefore starts only after the first one closed.
 *
 * @param db A PGlite instance.
 * @param query A SQL string, `{ query, params }` or a compiled query.
 * @param options Statement timeout, output shape.
 * @returns An open source.
 *
 * @example Fetch twice with different sizes
 * ```ts ignore
 * const source = await openPGliteCursor(pg, "select * from orders");
 * const first = await source.fetch(10);
 * await source.close();
 * ```
 */
export async function openPGliteCursor(
  db: PGliteDatabase,
  query: unknown,
  options: PGliteCursorOptions = {},
): Promise<PostgresSource> {
  const { text, params } = toTextQuery(query, "PGlite");
  const sqlText = options.output === "json"
    ? `select row_to_json(sluice_row.*)::text from (${text}\n) as sluice_row`
    : text;
  const parsers = rawParsers(db);
  const encoder = new TextEncoder();
  let columns: readonly Column[] | undefined;
  let closed = false;
  let finish!: (error?: unknown) => void;
  const finished = new Promise<{ error?: unknown }>((resolve) => {
    finish = (error) => resolve(error === undefined ? {} : { error });
  });

  // The transaction stays open (and PGlite's connection held) until close(): the callback waits
  // for `finished`; throwing from it makes PGlite roll back, returning commits.
  // A plain deferred rather than Promise.withResolvers(), which Node 20 lacks.
  let openTx!: (tx: PGliteTransaction) => void;
  let failOpen!: (error: unknown) => void;
  const opened = new Promise<PGliteTransaction>((resolve, reject) => {
    openTx = resolve;
    failOpen = reject;
  });
  const done = db.transaction(async (tx: PGliteTransaction) => {
    await tx.query("set transaction read only");
    if (options.statementTimeoutMs !== undefined) {
      await tx.query(`set local statement_timeout = ${options.statementTimeoutMs}`);
    }
    await tx.query(`declare ${CURSOR_NAME} no scroll cursor for ${sqlText}`, params);
    openTx(tx);
    const end = await finished;
    if ("error" in end) throw end.error;
  });
  // Errors before the cursor opened reject `opened`; later ones are the caller's own close reason.
  const settled = done.then(() => {}, (error) => {
    failOpen(error);
  });
  const tx = await opened;

  const parserOf = (type: number): Column["parser"] => {
    const parser = ((db as { parsers?: Record<string, Parser> }).parsers ?? {})[type];
    return parser === undefined ? undefined : (raw: string) => parser(raw, type);
  };

  return {
    columns: () => columns,
    async fetch(rows: number): Promise<SourceBatch<RawRow>> {
      const result = await tx.query(`fetch forward ${rows} from ${CURSOR_NAME}`, [], {
        rowMode: "array",
        parsers,
      });
      if (columns === undefined) {
        columns = result.fields.map((f) => {
          const column: Column = { name: f.name, type: f.dataTypeID };
          const parser = parserOf(f.dataTypeID);
          if (parser !== undefined) column.parser = parser;
          return column;
        });
      }
      let bytes = 0;
      const out = new Array<RawRow>(result.rows.length);
      for (let i = 0; i < result.rows.length; i++) {
        const row = result.rows[i] as (string | null)[];
        const raw: RawRow = new Array(row.length);
        for (let j = 0; j < row.length; j++) {
          const value = row[j];
          if (value === null || value === undefined) raw[j] = null;
          else {
            const encoded = encoder.encode(value);
            bytes += encoded.length;
            raw[j] = encoded;
          }
        }
        out[i] = raw;
      }
      return { rows: out, bytes };
    },
    async close(error?: unknown): Promise<void> {
      if (closed) return;
      closed = true;
      finish(error);
      await settled;
    },
  };
}
