import { test } from "node:test";
import assert from "node:assert/strict";
import { streamCsv, streamNdjson, streamRows } from "../mod.ts";
import type { StreamSummary } from "../mod.ts";
import { busySessions, connect, endPool } from "./_db.ts";
import type { Sql } from "./_db.ts";

/** Runs `use` with a pool and an `onEnd` that also records whether the connection was free. */
async function withSummary(
  use: (sql: Sql, onEnd: (s: StreamSummary) => void) => Promise<void>,
): Promise<StreamSummary & { busyAtEnd: number }> {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 1 });
  try {
    let summary: StreamSummary | undefined;
    await use(sql, (s) => {
      assert.equal(summary, undefined, "onEnd was called twice");
      summary = s;
    });
    for (let i = 0; i < 100 && summary === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(summary, "onEnd was not called");
    return { ...summary, busyAtEnd: (await busySessions(admin, app)).length };
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
}

test("onEnd reports rows, bytes, batches and duration of a completed stream, connection freed", async () => {
  const s = await withSummary(async (sql, onEnd) => {
    let n = 0;
    const q = "select g, 'abc' as t from generate_series(1, 5000) g";
    for await (const _ of streamRows(sql, q, { onEnd, firstBatchRows: 100 })) n++;
    assert.equal(n, 5000);
  });
  assert.equal(s.ending, "completed");
  assert.equal(s.error, undefined);
  assert.equal(s.rows, 5000);
  // 1..5000 is 18,893 digits, plus 3 bytes of 'abc' a row.
  assert.equal(s.bytes, 18_893 + 5000 * 3);
  assert.ok(s.batches >= 2);
  assert.ok(s.durationMs > 0);
  assert.equal(s.busyAtEnd, 0);
});

test("onEnd reports a cancelled, an aborted, an idle and a failed stream (cursor and COPY)", async () => {
  for (const copy of [true, false]) {
    const cancelled = await withSummary(async (sql, onEnd) => {
      const reader = streamCsv(sql, "select g from generate_series(1, 1000000) g", { onEnd, copy })
        .getReader();
      await reader.read();
      await reader.cancel(new Error("enough"));
    });
    assert.equal(cancelled.ending, "cancelled");
    assert.match(String(cancelled.error), /enough/);
    assert.ok(cancelled.rows > 0);

    const aborted = await withSummary(async (sql, onEnd) => {
      const controller = new AbortController();
      const reader = streamNdjson(sql, "select g from generate_series(1, 1000000) g", {
        onEnd,
        copy,
        signal: controller.signal,
      }).getReader();
      await reader.read();
      controller.abort(new Error("client left"));
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break;
      }, /client left/);
    });
    assert.equal(aborted.ending, "aborted");
    assert.equal(aborted.busyAtEnd, 0);

    const idle = await withSummary(async (sql, onEnd) => {
      const reader = streamNdjson(sql, "select g from generate_series(1, 1000000) g", {
        onEnd,
        copy,
        idleTimeoutMs: 100,
      }).getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 400));
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break;
      }, { code: "IDLE_TIMEOUT" });
    });
    assert.equal(idle.ending, "idle_timeout");
    assert.equal((idle.error as { code?: string }).code, "IDLE_TIMEOUT");

    const failed = await withSummary(async (sql, onEnd) => {
      await assert.rejects(async () => {
        const q = "select 1 / (g - 3000) from generate_series(1, 5000) g";
        for await (const _ of streamNdjson(sql, q, { onEnd, copy })) { /* until it fails */ }
      }, { code: "22012" });
    });
    assert.equal(failed.ending, "error");
    assert.equal((failed.error as { code?: string }).code, "22012");
    assert.equal(failed.busyAtEnd, 0);
  }
});

test("onEnd that throws does not change how the stream ends", async () => {
  const s = await withSummary(async (sql, onEnd) => {
    let n = 0;
    const stream = streamRows(sql, "select 1", {
      onEnd: (summary) => {
        onEnd(summary);
        throw new Error("logger broke");
      },
    });
    for await (const _ of stream) n++;
    assert.equal(n, 1);
  });
  assert.equal(s.ending, "completed");
});

test("onEnd must be a function", () => {
  const sql = connect().sql;
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamRows(sql, "select 1", { onEnd: 3 as any }), TypeError);
  void sql.end();
});
