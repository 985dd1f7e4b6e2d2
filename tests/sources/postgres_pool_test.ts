import { test } from "node:test";
import assert from "node:assert/strict";
import { streamCsv, streamNdjson, streamRows } from "../../mod.ts";
import { connect, endPool, isConnectionLoss } from "../_db.ts";
import type { Sql } from "../_db.ts";
import { assertClean } from "../formats/_oracle.ts";

/** Resolves with what `p` settles to, or "timed out" after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timed out"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function count(stream: ReadableStream<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

// Each stream is killed mid-way, cursor and COPY in turn; a pool of two used to be gone after two
// or three kills (postgres.js handed a killed connection's error to the reservation that
// reconnected it, then lost the connection).
test("a pool whose streams' backends are killed keeps serving new streams", {
  timeout: 120_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 2 });
  const kill = () =>
    admin`select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = ${app} and state <> 'idle'`;
  const kinds: ((sql: Sql) => ReadableStream<unknown>)[] = [
    (sql) => streamRows(sql, "select g, pg_sleep(0.001) from generate_series(1, 100000) g"),
    (sql) => streamCsv(sql, "select g, repeat('x', 100) from generate_series(1, 3000000) g"),
    (sql) =>
      streamNdjson(sql, "select g, repeat('x', 100) from generate_series(1, 3000000) g", {
        copy: false,
      }),
  ];
  try {
    for (let i = 0; i < 9; i++) {
      const outcome = await within(
        (async () => {
          let n = 0;
          try {
            for await (const _ of kinds[i % kinds.length]!(sql)) if (++n === 20) await kill();
            return "completed";
          } catch (e) {
            return isConnectionLoss(e) || (e as { code?: string }).code === "CURSOR_LOST"
              ? "lost"
              : String(e);
          }
        })(),
        10_000,
      );
      assert.equal(outcome, "lost", `stream ${i}`);
      // The next streams get a connection at once, however many kills came before.
      for (let j = 0; j < 2; j++) {
        assert.equal(await within(count(streamRows(sql, "select 1")), 3000), 1, `after kill ${i}`);
      }
    }
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});
