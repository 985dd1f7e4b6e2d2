import type { Conn } from "./_target.ts";

/** The parts of the Node `Writable` postgres.js returns for `COPY … FROM STDIN` that ingest uses. */
interface CopyWritable {
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  destroy(error?: unknown): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly writableLength: number;
}

/** A postgres.js query, with the internals the COPY workaround patches. */
interface CopyQuery {
  writable(): Promise<CopyWritable>;
  cancel(): unknown;
  reject: (error: unknown) => void;
}

/** An open `COPY … FROM STDIN`. */
export interface CopyIn {
  /**
   * Sends bytes. Resolves at once while less than `bufferBytes` wait to be sent, else when they
   * drained: this is what makes the body be read only as fast as PostgreSQL takes it.
   */
  write(chunk: Uint8Array): Promise<void> | undefined;
  /** Ends the data and waits until PostgreSQL has stored every row (or rejects with its error). */
  end(): Promise<void>;
  /** Fails the COPY (CopyFail, or a cancel request once ended) and waits until it is over. */
  abort(reason: unknown): Promise<void>;
  /** What the COPY failed with (PostgreSQL's error, a lost connection), once it failed. */
  readonly error: unknown;
}

/** Bytes queued in the writable before a write waits for it to drain. */
export const COPY_BUFFER_BYTES = 1024 * 1024;

/**
 * Starts `COPY … FROM STDIN` on the connection.
 *
 * postgres.js 3.4.9: an error PostgreSQL reports after the writable's `final()` ran (a bad value in
 * the last rows) reaches neither the stream (already detached) nor the query promise (already
 * resolved with the stream), so `finish` never comes and the caller would wait forever. The
 * query's `reject` is wrapped to catch that error.
 *
 * @param conn The connection (inside a transaction).
 * @param statement The `COPY … FROM STDIN` statement.
 * @param bufferBytes Bytes queued before a write waits.
 * @returns The open COPY.
 */
export async function openCopyIn(
  conn: Conn,
  statement: string,
  bufferBytes: number = COPY_BUFFER_BYTES,
): Promise<CopyIn> {
  const query = conn.unsafe(statement) as unknown as CopyQuery;
  let failure: { error: unknown } | undefined;
  let settled = false;
  let settle!: (error?: { error: unknown }) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (f) => {
      settled = true;
      if (f === undefined) resolve();
      else reject(f.error);
    };
  });
  done.catch(() => {});
  const fail = (error: unknown) => {
    failure ??= { error };
    settle(failure);
  };
  const reject = query.reject;
  query.reject = (error) => {
    reject(error);
    fail(error);
  };
  const stream = await query.writable();
  let ended = false;
  stream.on("error", (error) => fail(error));
  stream.on("finish", () => settle());

  const drained = () =>
    new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        stream.off("drain", onDrain);
        resolve();
      };
      stream.on("drain", onDrain);
      done.then(() => {
        stream.off("drain", onDrain);
        resolve();
      }, (error) => {
        stream.off("drain", onDrain);
        reject(error);
      });
    });

  return {
    get error() {
      return failure?.error;
    },
    write(chunk) {
      if (failure) return Promise.reject(failure.error);
      stream.write(chunk);
      return stream.writableLength > bufferBytes ? drained() : undefined;
    },
    async end() {
      if (failure) throw failure.error;
      ended = true;
      stream.end();
      await done;
    },
    async abort(reason) {
      if (!settled) {
        // Once ended, the data is sent: only a cancel request stops PostgreSQL storing it.
        if (ended) query.cancel();
        else stream.destroy(reason instanceof Error ? reason : new Error(String(reason)));
      }
      await done.catch(() => {});
    },
  };
}
