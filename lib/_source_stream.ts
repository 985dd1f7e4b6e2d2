import { BatchTuner } from "./batch_tuner.ts";
import { SluiceError } from "./errors.ts";
import { resolveStreamOptions } from "./options.ts";
import type { BatchSizing, StreamEnding, StreamOptions } from "./options.ts";
import type { BatchSource, OpenBatchSource } from "./sources/batch_source.ts";

/**
 * The stream engine behind every public stream: pulls batches from a source with tuned sizes,
 * hands them to `emit`, and frees the source on every exit path (end, cancel, abort, idle timeout,
 * source error). Pull-based with a high-water mark of 0: nothing is fetched until the consumer
 * reads, and never more than the batch being read.
 */
export function createSourceStream<T, O>(
  open: OpenBatchSource<T>,
  options: StreamOptions | undefined,
  emit: (controller: ReadableStreamDefaultController<O>, rows: T[]) => void,
  // Called once after the last batch, the source already closed (a format's closing bytes).
  finish?: (controller: ReadableStreamDefaultController<O>) => void,
  // Called once the source is open: sizing that suits it better than the options' (before the
  // first fetch, so the first batch is still `firstBatchRows`).
  resize?: () => Partial<BatchSizing> | undefined,
): ReadableStream<O> {
  const opts = resolveStreamOptions(options);
  const { signal, idleTimeoutMs, onBatch, onEnd } = opts;
  const created = performance.now();
  let rows = 0;
  let bytes = 0;
  let ending: StreamEnding | undefined;
  let tuner = new BatchTuner(opts);
  let source: BatchSource<T> | undefined;
  let opening: Promise<BatchSource<T>> | undefined;
  // Aborted when the stream ends while the source is still opening, so the source can stop what
  // it is waiting on (a COPY sends nothing until its first row, which may take the whole query).
  const stopOpening = new AbortController();
  let closing: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  // Set from callbacks (abort, idle timer) while a pull awaits; read through this so the
  // compiler does not narrow it across awaits.
  const failed = (): { error: unknown } | undefined => failure;
  let pulling = false;
  let index = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastDesired: number | null = null;
  let lastActivity = 0;
  // Checked eight times per period, so a stall is caught within 1.125 × idleTimeoutMs.
  const idleTick = Math.max(10, Math.floor(idleTimeoutMs / 8));
  let ctrl: ReadableStreamDefaultController<O>;
  // What `emit` writes to: the stream's controller, noting that a pull handed something out.
  let enqueued = false;
  const out: ReadableStreamDefaultController<O> = {
    get desiredSize() {
      return ctrl.desiredSize;
    },
    enqueue(chunk?: O) {
      enqueued = true;
      ctrl.enqueue(chunk!);
    },
    close: () => ctrl.close(),
    error: (e?: unknown) => ctrl.error(e),
  };

  const shutdown = (error?: unknown, why: StreamEnding = "error"): Promise<void> => {
    if (closing) return closing;
    if (error !== undefined) failure ??= { error };
    ending ??= error === undefined ? "completed" : why;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    if (source) closing = source.close(error);
    else if (opening) {
      // The source is still opening: stop it, and close it should it open anyway.
      stopOpening.abort(error);
      closing = opening.then(
        (s) => s.close(error ?? new Error("The stream was cancelled")),
        () => {},
      );
    } else closing = Promise.resolve();
    if (onEnd) closing = closing.then(report);
    return closing;
  };

  const report = (): void => {
    try {
      onEnd!({
        ending: ending!,
        ...(failure ? { error: failure.error } : {}),
        rows,
        bytes,
        batches: index,
        durationMs: performance.now() - created,
      });
    } catch { /* a logging hook must not change how the stream ends */ }
  };

  // Fail the stream from outside a pull (abort, idle): free the source first so that a consumer
  // who sees the error can rely on the connection being back in the pool.
  const failFromOutside = (error: unknown, why: StreamEnding): void => {
    if (closing) return;
    if (pulling) {
      failure ??= { error };
      ending ??= why;
      if (source) source.interrupt?.();
      else stopOpening.abort(error);
      return;
    }
    void shutdown(error, why).then(() => ctrl.error(error));
  };

  function onAbort(): void {
    failFromOutside(signal?.reason, "aborted");
  }

  // A consumer counts as active while it reads: either a pull is under way or the queue's size
  // moved since the last check (rows mode enqueues a whole batch at once).
  const checkIdle = (): void => {
    timer = undefined;
    if (closing || pulling) return;
    const desired = ctrl.desiredSize;
    const now = performance.now();
    if (desired !== lastDesired) {
      lastDesired = desired;
      lastActivity = now;
    }
    const idleFor = now - lastActivity;
    if (idleFor < idleTimeoutMs) {
      timer = setTimeout(checkIdle, Math.min(idleTick, idleTimeoutMs - idleFor));
      return;
    }
    failFromOutside(
      new SluiceError(
        "IDLE_TIMEOUT",
        `Cannot keep the stream open as the consumer stopped reading: idle for more than ${idleTimeoutMs} ms`,
      ),
      "idle_timeout",
    );
  };

  return new ReadableStream<O>({
    start(controller) {
      ctrl = controller;
      if (signal?.aborted) {
        failure = { error: signal.reason };
        ending = "aborted";
        closing = onEnd ? Promise.resolve().then(report) : Promise.resolve();
        controller.error(signal.reason);
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      if (closing) {
        await closing;
        if (failure) throw failure.error;
        return;
      }
      if (timer !== undefined) clearTimeout(timer), timer = undefined;
      pulling = true;
      try {
        if (!source) {
          opening = open(stopOpening.signal);
          source = await opening;
          const sizing = resize?.();
          if (sizing) tuner = new BatchTuner({ ...opts, ...sizing });
        }
        // A pull must hand the reader something or end the stream: a pull that resolves having
        // enqueued nothing is not called again while the reader waits (the Streams spec re-pulls
        // only for reads that arrive during a pull). A batch can encode to nothing yet (a COPY
        // batch whose bytes wait for a full chunk), so fetch again until it does.
        enqueued = false;
        let done = false;
        while (!done && !enqueued) {
          const early = failed();
          if (early) throw early.error;
          const wanted = tuner.nextRows;
          const started = performance.now();
          const batch = await source.fetch(wanted);
          const late = failed();
          if (late) throw late.error;
          const count = batch.count ?? batch.rows.length;
          rows += count;
          bytes += batch.bytes;
          done = batch.done ?? count < wanted;
          const next = done ? 0 : tuner.record(count, batch.bytes);
          const batchIndex = index++;
          onBatch?.({
            index: batchIndex,
            rows: count,
            bytes: batch.bytes,
            fetchMs: performance.now() - started,
            nextRows: next,
          });
          if (count > 0) emit(out, batch.rows);
        }
        if (done) {
          await shutdown();
          finish?.(controller);
          controller.close();
        } else if (idleTimeoutMs > 0) {
          lastDesired = controller.desiredSize;
          lastActivity = performance.now();
          timer = setTimeout(checkIdle, idleTick);
        }
      } catch (error) {
        const reason = failure ? failure.error : error;
        await shutdown(reason);
        throw reason;
      } finally {
        pulling = false;
      }
    },
    async cancel(reason) {
      if (source) source.interrupt?.();
      await shutdown(reason ?? new Error("The stream was cancelled"), "cancelled");
    },
  }, { highWaterMark: 0 });
}
