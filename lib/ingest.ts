import { checkOptionNames } from "./check_option_names.ts";
import { SluiceError } from "./errors.ts";
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_TARGET_BATCH_BYTES } from "./options.ts";
import { endReserved } from "./sources/_end_reserved.ts";
import { reserveConnection, watchClose } from "./sources/_postgres_pool.ts";
import { isConnectionError } from "./sources/postgres_cursor.ts";
import type { Sql } from "./sources/postgres_cursor.ts";
import { ByteSink } from "./ingest/_byte_sink.ts";
import { openCopyIn } from "./ingest/_copy_in.ts";
import type { CopyIn } from "./ingest/_copy_in.ts";
import { CsvScanner } from "./ingest/_csv_scanner.ts";
import { NdjsonToCopy } from "./ingest/_ndjson_to_copy.ts";
import {
  checkIdentifier,
  describeTypes,
  quoteIdent,
  quoteName,
  quoteTableName,
  resolveTarget,
} from "./ingest/_target.ts";
import type { Conn, Target } from "./ingest/_target.ts";

/** The body's format: NDJSON (one JSON object a line) or CSV with a header line. */
export type IngestFormat = "ndjson" | "csv";

/** What to do with a row whose key already exists in the table. */
export interface IngestConflict {
  /** Columns of a unique index or constraint (`ON CONFLICT (key)`); they must be in the body. */
  key: string[];
  /**
   * Columns to overwrite from the new row, `"all"` (every body column but the key) or `"nothing"`
   * (keep the existing row). When a key appears twice in the body, the later row wins, as if the
   * rows were applied one by one (`"nothing"`: the first one wins).
   */
  update: string[] | "all" | "nothing";
}

/** Options of {@linkcode ingest}. */
export interface IngestOptions {
  /** The body's format. */
  format: IngestFormat;
  /**
   * The columns the body may set. NDJSON: the COPY column list (a key missing from a line is
   * NULL); default: the keys of the first line. CSV: the header may only name these; default:
   * any column of the table.
   */
  columns?: string[];
  /** Upsert instead of insert: rows go through a temporary staging table. */
  onConflict?: IngestConflict;
  /**
   * Upserts are applied in statements of about this many bytes of staged rows. Default 2 MiB;
   * `Infinity` applies them in one statement.
   */
  targetBatchBytes?: number;
  /** Aborting it stops reading the body, rolls back, and rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A body that sends nothing for this long (while sluice waits for it, not while PostgreSQL
   * stores rows) ends the ingest: rolled back, rejected with `SluiceError("IDLE_TIMEOUT")`, the
   * connection back in the pool. It bounds how long a stalled upload holds a connection, a
   * transaction and the table's lock. Default 60,000; 0 disables.
   */
  idleTimeoutMs?: number;
  /**
   * The longest line (an NDJSON line, a CSV record with its quoted line breaks, the CSV header)
   * accepted, in bytes; a longer one fails the ingest with `SluiceError("LINE_TOO_LONG")` as soon
   * as it is seen. An NDJSON line is held in memory whole (several times its size while it is
   * converted), so this bounds an ingest's memory. Default 16 MiB.
   */
  maxLineBytes?: number;
}

/** What {@linkcode ingest} wrote. */
export interface IngestResult {
  /** Rows read from the body (inserted, or given to `ON CONFLICT`). */
  rows: number;
  /** Statements that wrote them: 1 for a plain COPY, one per batch for an upsert. */
  batches: number;
}

/** Default of `maxLineBytes`: 16 MiB. */
export const DEFAULT_MAX_LINE_BYTES: number = 16 * 1024 * 1024;

/** Bytes gathered before they are handed to COPY. */
const CHUNK_BYTES = 64 * 1024;
const PAGE_BYTES = 8192;

function fail(message: string): never {
  throw new SluiceError("BAD_INPUT", message);
}

interface Checked {
  format: IngestFormat;
  columns: string[] | undefined;
  onConflict: IngestConflict | undefined;
  targetBatchBytes: number;
  signal: AbortSignal | undefined;
  idleTimeoutMs: number;
  maxLineBytes: number;
}

function checkNames(what: string, value: unknown, allowEmpty = false): string[] {
  if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) {
    throw new TypeError(
      `Cannot use ${what} as a non-empty list of column names: current value is ${
        JSON.stringify(value) ?? String(value)
      }`,
    );
  }
  for (const name of value) checkIdentifier(what, name);
  const set = new Set(value);
  if (set.size !== value.length) {
    throw new TypeError(
      `Cannot use ${what} as a list of distinct column names: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return [...value];
}

function checkOptions(options: IngestOptions): Checked {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot use options as ingest options: current value is ${String(options)}`,
    );
  }
  const { format, columns, onConflict, targetBatchBytes, signal } = options;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (typeof idleTimeoutMs !== "number" || !Number.isInteger(idleTimeoutMs) || idleTimeoutMs < 0) {
    throw new RangeError(
      `Cannot use idleTimeoutMs as a number of milliseconds (0 or more): current value is ${
        String(options.idleTimeoutMs)
      }`,
    );
  }
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (typeof maxLineBytes !== "number" || !Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(
      `Cannot use maxLineBytes as a byte count of at least 1: current value is ${
        String(options.maxLineBytes)
      }`,
    );
  }
  if (format !== "ndjson" && format !== "csv") {
    throw new TypeError(
      `Cannot use format as "ndjson" or "csv": current value is ${JSON.stringify(format)}`,
    );
  }
  let conflict: IngestConflict | undefined;
  if (onConflict !== undefined) {
    if (onConflict === null || typeof onConflict !== "object") {
      throw new TypeError(
        `Cannot use onConflict as { key, update }: current value is ${String(onConflict)}`,
      );
    }
    const update = onConflict.update;
    if (update !== "all" && update !== "nothing") checkNames("onConflict.update", update);
    conflict = {
      key: checkNames("onConflict.key", onConflict.key),
      update: Array.isArray(update) ? [...update] : update,
    };
  }
  const bytes = targetBatchBytes ?? DEFAULT_TARGET_BATCH_BYTES;
  if (typeof bytes !== "number" || !(bytes >= 1)) {
    throw new RangeError(
      `Cannot use targetBatchBytes as a byte count of at least 1: current value is ${
        String(targetBatchBytes)
      }`,
    );
  }
  if (signal !== undefined && typeof signal?.aborted !== "boolean") {
    throw new TypeError(`Cannot use signal as an AbortSignal: current value is ${String(signal)}`);
  }
  return {
    format,
    columns: columns === undefined ? undefined : checkNames("columns", columns),
    onConflict: conflict,
    targetBatchBytes: bytes,
    signal,
    idleTimeoutMs,
    maxLineBytes,
  };
}

/**
 * One ingest in progress: the body, the connection, the destination, and what stops it from
 * outside its own awaits (an abort, the idle timeout, the connection closing).
 */
class Load {
  conn!: Conn;
  target!: Target;
  copy: CopyIn | undefined;
  running: { cancel(): unknown } | undefined;
  rows = 0;
  batches = 0;
  /** Why the ingest was stopped from outside, first cause only. */
  failure: { error: unknown } | undefined;
  /** Whether the connection's socket closed: no statement may be sent after it. */
  lost = false;
  #stage: string | undefined;
  #columns: string[] = [];
  #reading = false;
  #readSince = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly options: Checked;

  // Plain fields, not parameter properties: Node's type stripping refuses those.
  constructor(reader: ReadableStreamDefaultReader<Uint8Array>, options: Checked) {
    this.reader = reader;
    this.options = options;
  }

  /** Stops the ingest: the body read, the COPY and the statement in flight end at once. */
  interrupt(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.reader.cancel(error).catch(() => {});
    void this.copy?.abort(error);
    if (!this.lost) this.running?.cancel();
  }

  /** Records that the connection closed (its backend was killed, the server restarted …). */
  connectionClosed(error: unknown): void {
    this.lost = true;
    this.interrupt(error);
  }

  /** Throws why the ingest was stopped, if it was; called before each statement. */
  check(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Reads the next chunk of the body; the idle timeout counts only the time spent here. */
  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    this.check();
    this.#reading = true;
    this.#readSince = performance.now();
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.reader.read();
    } finally {
      this.#reading = false;
    }
    this.check();
    return result;
  }

  /** Starts the idle timeout; checked eight times a period, so it fires within 1.125 periods. */
  watchIdle(): void {
    const limit = this.options.idleTimeoutMs;
    if (limit === 0) return;
    const tick = Math.max(10, Math.floor(limit / 8));
    const check = () => {
      this.#timer = undefined;
      if (this.failure) return;
      if (this.#reading && performance.now() - this.#readSince >= limit) {
        this.interrupt(
          new SluiceError(
            "IDLE_TIMEOUT",
            `Cannot keep the ingest open as the body sent nothing: idle for more than ${limit} ms`,
          ),
        );
        return;
      }
      this.#timer = setTimeout(check, tick);
    };
    this.#timer = setTimeout(check, tick);
  }

  /** Stops the idle timeout. */
  stopIdle(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Fails with `LINE_TOO_LONG`, naming the line. */
  lineTooLong(where: string): never {
    throw new SluiceError(
      "LINE_TOO_LONG",
      `Cannot ingest ${where}: it is longer than maxLineBytes (${this.options.maxLineBytes} bytes)`,
    );
  }

  /** Checks body column names against the table and `columns`; names the line for errors. */
  checkColumns(names: readonly string[], where: string): void {
    const allowed = this.options.columns;
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name)) {
        fail(`Cannot ingest ${where}: column ${quoteName(name)} appears twice`);
      }
      seen.add(name);
      if (!this.target.byName.has(name) || (allowed !== undefined && !allowed.includes(name))) {
        fail(
          `Cannot ingest ${where}, column ${quoteName(name)}: unknown column (${
            allowed === undefined ? "not in the table" : "not in options.columns"
          })`,
        );
      }
    }
    const conflict = this.options.onConflict;
    if (conflict === undefined) return;
    const needed = [...conflict.key, ...(Array.isArray(conflict.update) ? conflict.update : [])];
    for (const name of needed) {
      if (!seen.has(name)) {
        fail(
          `Cannot upsert ${where}: onConflict names column ${
            quoteName(name)
          }, which the body does not have`,
        );
      }
    }
  }

  /** Starts the COPY: into the table, or into a staging table for an upsert. */
  async start(columns: string[], csv: boolean): Promise<CopyIn> {
    this.check();
    this.#columns = columns;
    const list = columns.map(quoteIdent).join(", ");
    let destination = this.target.sql;
    if (this.options.onConflict !== undefined) {
      // Named after the table so PostgreSQL's COPY errors ("COPY orders, line 5, column …") name
      // it; a temporary table shadows nothing here because the target is schema-qualified.
      const stage = `pg_temp.${
        quoteIdent(this.target.temporary ? "sluice_ingest" : this.target.name)
      }`;
      await this.run(
        `create temp table ${stage} on commit drop as select ${list} from ${this.target.sql} with no data`,
      );
      this.#stage = destination = stage;
    }
    const format = csv ? " with (format csv, header true)" : "";
    this.check();
    this.copy = await openCopyIn(this.conn, `copy ${destination} (${list}) from stdin${format}`);
    return this.copy;
  }

  /** Runs a statement that an abort can cancel. */
  async run(statement: string): Promise<unknown> {
    this.check();
    const query = this.conn.unsafe(statement);
    this.running = query;
    try {
      return await query;
    } finally {
      this.running = undefined;
    }
  }

  /** Ends the COPY and, for an upsert, moves the staged rows into the table. */
  async finish(): Promise<void> {
    if (this.copy === undefined) return;
    await this.copy.end();
    const conflict = this.options.onConflict;
    if (conflict === undefined || this.#stage === undefined) {
      this.batches = 1;
      return;
    }
    const stage = this.#stage;
    const columns = this.#columns;
    const key = conflict.key.map(quoteIdent).join(", ");
    const update = conflict.update === "nothing"
      ? []
      : conflict.update === "all"
      ? columns.filter((c) => !conflict.key.includes(c))
      : conflict.update;
    const list = columns.map(quoteIdent).join(", ");
    const action = update.length === 0
      ? "do nothing"
      : `do update set ${
        update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(", ")
      }`;
    // DO UPDATE may not touch a row twice in one statement: keep the last row of each key (rows
    // with a NULL in the key never conflict, so each is its own group).
    const nulls = `(case when num_nulls(${key}) > 0 then ctid end)`;
    const select = (where: string) =>
      update.length === 0
        ? `select ${list} from ${stage}${where}`
        : `select distinct on (${key}, ${nulls}) ${list} from ${stage}${where} order by ${key}, ${nulls}, ctid desc`;
    const statement = (where: string) =>
      `insert into ${this.target.sql} (${list}) ${select(where)} on conflict (${key}) ${action}`;

    const [{ pages, version }] = await this.run(
      `select (pg_relation_size('${stage.replaceAll("'", "''")}') / ${PAGE_BYTES})::int as pages,
              current_setting('server_version_num')::int as version`,
    ) as [{ pages: number; version: number }];
    const step = Math.max(1, Math.floor(this.options.targetBatchBytes / PAGE_BYTES));
    // TID range scans (PostgreSQL 14+) make each batch read only its own pages.
    if (pages <= step || version < 140000) {
      await this.run(statement(""));
      this.batches = 1;
      return;
    }
    for (let page = 0; page < pages; page += step) {
      await this.run(
        statement(` where ctid >= '(${page},0)'::tid and ctid < '(${page + step},0)'::tid`),
      );
      this.batches++;
    }
  }
}

/** Every option name of {@linkcode IngestOptions}. */
export const INGEST_OPTION_NAMES: readonly string[] = [
  "format",
  "columns",
  "onConflict",
  "targetBatchBytes",
  "signal",
  "idleTimeoutMs",
  "maxLineBytes",
];

/**
 * Streams an NDJSON or CSV body into a table with `COPY … FROM STDIN`, all or nothing.
 *
 * The body is read only as fast as PostgreSQL takes the rows (at most about 1 MiB waits in the
 * driver), so memory stays flat for any size of body. Everything runs in one transaction on a
 * connection reserved from `sql`'s pool: bad input, a value PostgreSQL rejects, a body stream that
 * errors, an abort or a lost connection all roll back — nothing is committed.
 *
 * - **CSV**: what `COPY … TO STDOUT (FORMAT csv, HEADER)` and `streamCsv` write: a header line
 *   naming the columns, `,`-separated fields, `"`-quoted with `""` for a quote, an empty unquoted
 *   field for NULL. The bytes go to PostgreSQL unchanged after being checked (quoting, field
 *   counts), so errors name the line and the column.
 * - **NDJSON**: what `streamNdjson` writes (`row_to_json` of each row): one JSON object per line.
 *   Each line is converted to COPY text: strings go in as their text, numbers keep their exact
 *   digits, `json`/`jsonb` columns get the value's JSON text, JSON arrays become array literals
 *   and objects become composite literals. A key missing from a line is NULL.
 *
 * With `onConflict`, rows are copied into a temporary staging table and moved with
 * `INSERT … SELECT … ON CONFLICT` in batches of about `targetBatchBytes`.
 *
 * Errors: `SluiceError("BAD_INPUT")` for input sluice rejects, naming the line and column (a
 * malformed JSON line, bad CSV quoting, an unknown or repeated column; names from the body are
 * echoed cut to 63 bytes); `SluiceError("LINE_TOO_LONG")` for a line longer than `maxLineBytes`
 * (default 16 MiB); `SluiceError("IDLE_TIMEOUT")` when the body sends nothing for
 * `idleTimeoutMs` (default 60 s); PostgreSQL's own error, unchanged, for a value it rejects — its
 * `where` reads like `COPY orders, line 5, column amount: "abc"` (and holds a trigger's SQL when
 * a trigger failed: do not pass it to clients as is). A connection that closes mid-ingest fails
 * it at once with postgres.js's error; the connection is not reused.
 *
 * @param sql A postgres.js instance; one connection is reserved until the ingest ends.
 * @param table The table, `"name"` or `"schema.name"`; names are taken literally (not folded to
 *   lower case) and quoted.
 * @param body The body, as UTF-8 bytes.
 * @param options `format` (required), `columns`, `onConflict`, `targetBatchBytes`, `signal`,
 *   `idleTimeoutMs`, `maxLineBytes`.
 * @returns The number of rows read and of statements that wrote them, once committed.
 * @throws {TypeError | RangeError} On bad arguments.
 *
 * @example Load an upload into a table
 * ```ts ignore
 * import postgres from "postgres";
 * import { ingest } from "@sluice/sluice";
 *
 * const sql = postgres(process.env.DATABASE_URL);
 * const file = await Deno.open("orders.ndjson");
 * const { rows } = await ingest(sql, "public.orders", file.readable, {
 *   format: "ndjson",
 *   onConflict: { key: ["id"], update: "all" },
 * });
 * ```
 */
export async function ingest(
  sql: Sql,
  table: string,
  body: ReadableStream<Uint8Array>,
  options: IngestOptions,
): Promise<IngestResult> {
  if (sql === null || typeof (sql as { reserve?: unknown })?.reserve !== "function") {
    throw new TypeError(
      `Cannot use sql as a postgres.js instance: current value is ${String(sql)}`,
    );
  }
  checkOptionNames(options, INGEST_OPTION_NAMES, "ingest()");
  const quoted = quoteTableName(table);
  if (body === null || typeof (body as { getReader?: unknown })?.getReader !== "function") {
    throw new TypeError(`Cannot use body as a ReadableStream: current value is ${String(body)}`);
  }
  const checked = checkOptions(options);
  const signal = checked.signal;
  signal?.throwIfAborted();

  const reader = body.getReader();
  const load = new Load(reader, checked);
  const onAbort = () => load.interrupt(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let conn: Conn | undefined;
  let began = false;
  let unwatch: (() => void) | undefined;
  try {
    conn = await reserveConnection(sql as unknown as { reserve(): Promise<Conn> }) as Conn;
    load.check();
    load.conn = conn;
    const watch = watchClose((error) => load.connectionClosed(error));
    await conn.unsafe("begin", [], { onexecute: watch.onexecute } as object);
    unwatch = watch.unwatch;
    began = true;
    load.check();
    const target = await resolveTarget(conn, quoted);
    if (checked.columns !== undefined) {
      for (const name of [...checked.columns, ...checked.onConflict?.key ?? []]) {
        if (!target.byName.has(name)) {
          throw new TypeError(
            `Cannot ingest column ${JSON.stringify(name)}: table ${target.sql} has no such column`,
          );
        }
      }
    }
    load.target = target;
    load.watchIdle();
    if (checked.format === "csv") await pumpCsv(load);
    else await pumpNdjson(load);
    await load.finish();
    load.check();
    load.stopIdle();
    await conn.unsafe("commit");
    began = false;
    return { rows: load.rows, batches: load.batches };
  } catch (caught) {
    load.stopIdle();
    const error = load.failure ? load.failure.error : caught;
    load.interrupt(error);
    await load.copy?.abort(error);
    const lost = load.lost || isConnectionError(caught) ||
      isConnectionError(load.copy?.error);
    unwatch?.();
    if (conn !== undefined) {
      await endReserved(conn, began ? "rollback" : "none", lost);
    }
    conn = undefined;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    unwatch?.();
    conn?.release();
    reader.releaseLock();
  }
}

async function write(load: Load, bytes: Uint8Array): Promise<void> {
  const wait = load.copy!.write(bytes);
  if (wait !== undefined) await wait;
}

async function pumpCsv(load: Load): Promise<void> {
  const scanner = new CsvScanner(undefined, load.options.maxLineBytes);
  const pending: Uint8Array[] = [];
  const sink = new ByteSink(CHUNK_BYTES * 2);
  const begin = async () => {
    const header = scanner.header!;
    load.checkColumns(header, "line 1 of the CSV body (the header)");
    await load.start(header, true);
    for (const chunk of pending) sink.append(chunk, 0, chunk.length);
    pending.length = 0;
  };
  for (;;) {
    const { done, value } = await load.read();
    if (done) break;
    if (value.length === 0) continue;
    scanner.scan(value);
    if (load.copy === undefined) {
      pending.push(value);
      if (scanner.header !== undefined) await begin();
    } else if (value.length >= CHUNK_BYTES / 2) {
      if (sink.length > 0) await write(load, sink.take());
      await write(load, value);
    } else {
      sink.append(value, 0, value.length);
    }
    if (sink.length >= CHUNK_BYTES) await write(load, sink.take());
  }
  scanner.end();
  if (load.copy === undefined && scanner.header !== undefined) await begin();
  if (sink.length > 0) await write(load, sink.take());
  load.rows = scanner.records;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function pumpNdjson(load: Load): Promise<void> {
  const out = new ByteSink(CHUNK_BYTES * 2);
  let converter: NdjsonToCopy | undefined;
  let line = 0;
  const carry: Uint8Array[] = [];
  let carryBytes = 0;

  const max = load.options.maxLineBytes;
  for (;;) {
    const { done, value } = await load.read();
    if (done) break;
    let pos = 0;
    for (;;) {
      const nl = value.indexOf(0x0a, pos);
      // Checked before the line's parts are joined, so an endless line is refused as it grows.
      if (carryBytes + (nl < 0 ? value.length : nl) - pos > max) {
        load.lineTooLong(`line ${line + 1} of the NDJSON body`);
      }
      if (nl < 0) {
        if (pos < value.length) {
          carry.push(value.subarray(pos));
          carryBytes += value.length - pos;
        }
        break;
      }
      let buf = value;
      let start = pos;
      let end = nl;
      if (carry.length > 0) {
        carry.push(value.subarray(pos, nl));
        buf = concat(carry, carryBytes + nl - pos);
        start = 0;
        end = buf.length;
        carry.length = 0;
        carryBytes = 0;
      }
      converter ??= await open(load, buf, start, end);
      converter.writeLine(buf, start, end, ++line, out);
      pos = nl + 1;
      if (out.length >= CHUNK_BYTES) await write(load, out.take());
    }
  }
  if (carryBytes > 0) {
    const whole = concat(carry, carryBytes);
    converter ??= await open(load, whole, 0, whole.length);
    converter.writeLine(whole, 0, whole.length, ++line, out);
  }
  if (out.length > 0) await write(load, out.take());
  load.rows = line;
}

/** Picks the COPY columns from `options.columns` or the first line's keys, and starts the COPY. */
async function open(
  load: Load,
  buf: Uint8Array,
  start: number,
  end: number,
): Promise<NdjsonToCopy> {
  const target = load.target;
  let names = load.options.columns;
  if (names === undefined) {
    let first: unknown;
    try {
      first = JSON.parse(new TextDecoder().decode(buf.subarray(start, end)));
    } catch {
      // Let the converter describe the syntax error precisely.
      const all = target.columns.map((c) => ({ name: c.name, type: { kind: "scalar" } as const }));
      new NdjsonToCopy(all).writeLine(buf, start, end, 1, new ByteSink(1024));
    }
    if (first === null || typeof first !== "object" || Array.isArray(first)) {
      fail("Cannot ingest line 1 of the NDJSON body: expected a JSON object");
    }
    names = Object.keys(first as object);
    if (names.length === 0) fail("Cannot ingest line 1 of the NDJSON body: the object has no keys");
  }
  load.checkColumns(names, "line 1 of the NDJSON body");
  const kinds = await describeTypes(load.conn, names.map((n) => target.byName.get(n)!.typeOid));
  const fromFirstLine = load.options.columns === undefined;
  const converter = new NdjsonToCopy(
    names.map((name) => ({ name, type: kinds.get(target.byName.get(name)!.typeOid)! })),
    (key) =>
      !target.byName.has(key)
        ? "unknown column (not in the table)"
        : fromFirstLine
        ? "unknown column (not a key of line 1, which sets the columns; or pass options.columns)"
        : "unknown column (not in options.columns)",
  );
  await load.start(names, false);
  return converter;
}
