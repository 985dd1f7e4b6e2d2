import type { RowSink } from "../sources/_copy_reader.ts";
import type { SourceBatch } from "../sources/batch_source.ts";
import type {
  Column,
  CopyEncoding,
  CopyRequest,
  PostgresSource,
  RawRow,
} from "../sources/postgres_cursor.ts";

// What a part's row mapper returns for a row it held back (ordered streams, part not yet due).
const HELD = Symbol("sluice.held");

/** A row a part read before its turn: a raw row, or a COPY line. */
type Held =
  | { raw: RawRow; columns: readonly Column[]; bytes: number }
  | { block: Uint8Array; start: number; end: number; sink: RowSink };

const ARENA_BLOCK_BYTES = 64 * 1024;

/**
 * Copies of driver bytes (a COPY line is only valid during the sink call; a raw value is a view
 * that would pin the driver's read buffer), packed into 64 KiB blocks: one allocation per block
 * rather than per row, whose many small backing stores would cost far more than their bytes.
 */
class ByteArena {
  #block: Uint8Array = new Uint8Array(0);
  #used = 0;

  /** Copies `src[start, end)`; returns the block holding it and where it starts there. */
  copy(src: Uint8Array, start: number, end: number): [Uint8Array, number] {
    const length = end - start;
    if (this.#used + length > this.#block.length) {
      this.#block = new Uint8Array(Math.max(ARENA_BLOCK_BYTES, length));
      this.#used = 0;
    }
    const at = this.#used;
    this.#block.set(start === 0 && end === src.length ? src : src.subarray(start, end), at);
    this.#used += length;
    return [this.#block, at];
  }
}

interface Part<T> {
  source: PostgresSource<T> | undefined;
  done: boolean;
  fetching: Promise<void> | undefined;
  // Rows pass straight on: the part is due and has handed on every row it held.
  live: boolean;
  held: Held[];
  // The next held row to hand on.
  replayed: number;
  arena: ByteArena;
  heldBytes: number;
  peakHeldBytes: number;
}

/** What a merged source reports about its parts. */
export interface MergeStats {
  /** Most bytes each part held back while not yet due (`ordered` only; 0 otherwise). */
  peakHeldBytes: number[];
}

/**
 * Reads several part sources at once as one source: every part not finished has a fetch in
 * flight; a fetch of the merged source returns as soon as one of them settles. Rows go to the
 * row mapper or COPY sink the caller gave (so formats write them to their output as they arrive,
 * whole rows only); with `ordered`, a part not yet due holds its rows back (copied, up to
 * `bufferBytes`, then its reads pause) and hands them on, in order, when the parts before it end.
 *
 * Created before the parts are opened: {@linkcode PartMerger.partOptions} gives each part the
 * mapper and sink that route its rows; {@linkcode PartMerger.source} then merges the opened parts.
 */
export class PartMerger<T> {
  readonly #ordered: boolean;
  readonly #bufferBytes: number;
  readonly #mapRow: ((row: RawRow, columns: readonly Column[]) => T) | undefined;
  readonly #copy: CopyRequest | undefined;
  readonly #parts: Part<T>[];
  #due = 0;
  #delivered = 0;
  // Rows to return from the current fetch, in output order.
  #out: T[] = [];
  #bytes = 0;
  #failure: { error: unknown; part: number } | undefined;
  #wake: (() => void) | undefined;

  /**
   * @param count How many parts.
   * @param ordered Emit the parts in order.
   * @param bufferBytes Most bytes held per part not yet due.
   * @param mapRow The caller's row mapper, if any.
   * @param copy The caller's COPY request, if any.
   */
  constructor(
    count: number,
    ordered: boolean,
    bufferBytes: number,
    mapRow: ((row: RawRow, columns: readonly Column[]) => T) | undefined,
    copy: CopyRequest | undefined,
  ) {
    this.#ordered = ordered;
    this.#bufferBytes = bufferBytes;
    this.#mapRow = mapRow;
    this.#copy = copy;
    this.#parts = Array.from({ length: count }, (_, i) => ({
      source: undefined,
      done: false,
      fetching: undefined,
      live: !ordered || i === 0,
      held: [],
      replayed: 0,
      arena: new ByteArena(),
      heldBytes: 0,
      peakHeldBytes: 0,
    }));
  }

  #isDue(index: number): boolean {
    return this.#parts[index]!.live;
  }

  #hold(part: Part<T>, held: Held, bytes: number): void {
    part.held.push(held);
    part.heldBytes += bytes;
    if (part.heldBytes > part.peakHeldBytes) part.peakHeldBytes = part.heldBytes;
  }

  /**
   * The row mapper and COPY request for part `index`.
   *
   * @param index The part's position in range order.
   * @returns Options for the part's source.
   */
  partOptions(index: number): {
    mapRow: (row: RawRow, columns: readonly Column[]) => T;
    copyAs?: CopyRequest;
  } {
    const part = this.#parts[index]!;
    const mapRow = this.#mapRow;
    const options: {
      mapRow: (row: RawRow, columns: readonly Column[]) => T;
      copyAs?: CopyRequest;
    } = {
      mapRow: (raw, columns) => {
        if (this.#isDue(index)) {
          this.#delivered++;
          return mapRow ? mapRow(raw, columns) : raw as T;
        }
        let bytes = 0;
        const copy = raw.map((v) => {
          if (v === null || v === undefined) return null;
          bytes += v.length;
          const [block, at] = part.arena.copy(v, 0, v.length);
          return block.subarray(at, at + v.length);
        });
        this.#hold(part, { raw: copy, columns, bytes }, bytes);
        return HELD as T;
      },
    };
    const copy = this.#copy;
    if (copy) {
      options.copyAs = {
        format: copy.format,
        sink: (encoding: CopyEncoding): RowSink => {
          const sink = copy.sink(encoding);
          return (bytes, start, end) => {
            if (this.#isDue(index)) {
              this.#delivered++;
              return sink(bytes, start, end);
            }
            const [block, at] = part.arena.copy(bytes, start, end);
            this.#hold(part, { block, start: at, end: at + end - start, sink }, end - start);
            return part.heldBytes >= this.#bufferBytes;
          };
        },
      };
    }
    return options;
  }

  // The due part ended and handed on all it held: the next one is due.
  #advance(): void {
    for (;;) {
      const current = this.#parts[this.#due];
      if (!current || !current.done || !current.live) return;
      const next = this.#parts[++this.#due];
      if (!next) return;
      if (next.held.length > 0) return;
      next.live = true;
    }
  }

  // Hands on rows the due part held, a slice at a time (up to `rows`, or until a COPY sink has a
  // full output chunk), so a long backlog leaves as a series of batches rather than at once.
  #replay(rows: number): void {
    const part = this.#parts[this.#due];
    if (!part || part.live) return;
    const mapRow = this.#mapRow;
    let count = 0;
    while (part.replayed < part.held.length && count < rows) {
      const held = part.held[part.replayed++]!;
      this.#delivered++;
      count++;
      if ("sink" in held) {
        part.heldBytes -= held.end - held.start;
        if (held.sink(held.block, held.start, held.end) === true) break;
      } else {
        part.heldBytes -= held.bytes;
        this.#out.push(mapRow ? mapRow(held.raw, held.columns) : held.raw as T);
      }
    }
    if (part.replayed < part.held.length) return;
    part.held = [];
    part.replayed = 0;
    part.arena = new ByteArena();
    part.heldBytes = 0;
    part.live = true;
    this.#advance();
  }

  #start(index: number, rows: number): void {
    const part = this.#parts[index]!;
    const source = part.source!;
    part.fetching = source.fetch(rows).then(
      (batch: SourceBatch<T>) => {
        part.fetching = undefined;
        const count = batch.count ?? batch.rows.length;
        this.#bytes += batch.bytes;
        for (const row of batch.rows) if (row !== HELD) this.#out.push(row);
        if (batch.done ?? count < rows) {
          part.done = true;
          if (this.#ordered) this.#advance();
        }
      },
      (error: unknown) => {
        part.fetching = undefined;
        this.#failure ??= { error, part: index };
      },
    ).finally(() => this.#wake?.());
  }

  /**
   * Merges the opened parts into one source.
   *
   * @param sources The parts' sources, in range order.
   * @returns The merged source, with `stats()` for tests and benchmarks.
   */
  source(sources: readonly PostgresSource<T>[]): PostgresSource<T> & { stats(): MergeStats } {
    sources.forEach((s, i) => this.#parts[i]!.source = s);
    const parts = this.#parts;
    let closed = false;
    return {
      columns: () => {
        for (const s of sources) {
          const c = s.columns();
          if (c !== undefined) return c;
        }
        return undefined;
      },
      fetch: async (rows: number): Promise<SourceBatch<T>> => {
        const before = this.#delivered;
        for (;;) {
          if (this.#failure) throw this.#failure.error;
          if (this.#ordered) this.#replay(rows);
          const done = parts.every((p) => p.done && p.live);
          if (done || this.#out.length > 0 || this.#delivered > before) {
            const batch = this.#out;
            const bytes = this.#bytes;
            this.#out = [];
            this.#bytes = 0;
            return {
              rows: batch,
              bytes,
              count: Math.max(batch.length, this.#delivered - before),
              done,
            };
          }
          parts.forEach((p, i) => {
            if (p.done || p.fetching) return;
            if (!this.#isDue(i) && p.heldBytes >= this.#bufferBytes) return;
            this.#start(i, rows);
          });
          await new Promise<void>((resolve) => this.#wake = resolve);
          this.#wake = undefined;
        }
      },
      close: async (error?: unknown): Promise<void> => {
        if (closed) return;
        closed = true;
        if (error !== undefined) { for (const s of sources) s.interrupt?.(); }
        await Promise.all(parts.map((p) => p.fetching));
        const failed = this.#failure;
        // A part's own failure goes to it (a dead connection is not talked to again); the others
        // end early and roll back.
        const sibling = new Error("Another part of the partitioned stream failed");
        await Promise.all(
          sources.map((s, i) =>
            s.close(failed === undefined ? error : failed.part === i ? failed.error : sibling)
          ),
        );
      },
      interrupt: () => {
        for (const s of sources) s.interrupt?.();
      },
      stats: () => ({ peakHeldBytes: parts.map((p) => p.peakHeldBytes) }),
    };
  }
}
