import { test } from "node:test";
import assert from "node:assert/strict";
import { createSourceStream } from "../lib/_source_stream.ts";

// A batch may encode to nothing yet (a COPY batch whose bytes wait for a full chunk). A pull that
// enqueues nothing is not called again while the reader waits, so the engine must fetch on.
test("createSourceStream() fetches again when a batch emits nothing, instead of stalling the reader", async () => {
  let next = 0;
  let closed = 0;
  const stream = createSourceStream<number, number>(
    () =>
      Promise.resolve({
        fetch: () => {
          const row = next++;
          return Promise.resolve({ rows: [row], bytes: 1, done: row === 5 });
        },
        close: () => Promise.resolve(void closed++),
      }),
    { idleTimeoutMs: 300, firstBatchRows: 1, maxBatchRows: 1 },
    // Only odd rows produce output.
    (controller, rows) => rows[0]! % 2 === 1 && controller.enqueue(rows[0]!),
  );
  const seen: number[] = [];
  for await (const value of stream) seen.push(value);
  assert.deepEqual(seen, [1, 3, 5]);
  assert.equal(closed, 1);
});
