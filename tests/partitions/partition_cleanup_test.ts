// Partitioned streams free every part's connection and the leader's on every exit path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import postgres from "postgres";
import { SluiceError, streamCsv, streamNdjson } from "../../mod.ts";
import { streamLimit, streamQuery } from "../../lib/hono/mod.ts";
import { startPgBouncer } from "../_pgbouncer.ts";
import {
  assertPoolRecovers,
  busySessions,
  connect,
  DATABASE_URL,
  endPool,
  isConnectionLoss,
  sessions,
  uniqueName,
  waitFor,
} from "../_db.ts";
import type { Sql } from "../_db.ts";

async function withTable(
  fn: (sql: Sql, table: string, app: string, admin: Sql) => Promise<void>,
): Promise<void> {
  const { sql, app } = connect({ max: 6 });
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const table = uniqueName("parts_cleanup");
  await admin.unsafe(`create table ${table} as
    select g as id, repeat(md5(g::text), 4) as note from generate_series(1, 200000) g`);
  try {
    await fn(sql, table, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await admin.unsafe(`drop table if exists ${table}`);
    await admin.end();
  }
}

async function assertFreed(admin: Sql, app: string): Promise<void> {
  assert.ok(
    await waitFor(async () => (await busySessions(admin, app)).length === 0, 5000),
    `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`,
  );
}

// Parts in a transaction: what a running partitioned stream holds once the leader committed.
async function partSessions(admin: Sql, app: string): Promise<{ pid: number }[]> {
  return (await sessions(admin, app)).filter((s) => s.state !== "idle");
}

const OPTIONS = { partitions: 3, targetBatchBytes: 16_384, idleTimeoutMs: 0 } as const;

test("a killed part backend ends the whole stream and frees every connection", async () => {
  await withTable(async (sql, table, app, admin) => {
    for (const copy of [false, true]) {
      const reader = streamCsv(sql, { table }, { ...OPTIONS, copy }).getReader();
      await reader.read();
      const parts = await partSessions(admin, app);
      assert.equal(parts.length, 3, `three parts in their transactions (copy ${copy})`);
      await admin`select pg_terminate_backend(${parts[1]!.pid})`;
      const error = await (async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) return undefined;
        }
      })().catch((e) => e);
      assert.ok(error !== undefined, "the stream failed");
      assert.ok(isConnectionLoss(error), `a connection error: ${String(error)}`);
      await assertFreed(admin, app);
      await assertPoolRecovers(sql);
    }
  });
});

test("a query error in one part ends the whole stream with it and frees every connection", async () => {
  await withTable(async (sql, table, app, admin) => {
    for (const copy of [false, true]) {
      const stream = streamNdjson(
        sql,
        `select id, 1 / (id - 150000) as x from ${table}`,
        { ...OPTIONS, partitionKey: "id", copy },
      );
      await assert.rejects(new Response(stream).text(), (e: unknown) => {
        assert.equal((e as { code?: string }).code, "22012");
        return true;
      });
      await assertFreed(admin, app);
    }
  });
});

test("cancel, abort and the idle timeout free every part's connection", async () => {
  await withTable(async (sql, table, app, admin) => {
    for (const copy of [false, true]) {
      const cancelled = streamCsv(sql, { table }, { ...OPTIONS, copy }).getReader();
      await cancelled.read();
      assert.equal((await partSessions(admin, app)).length, 3);
      await cancelled.cancel();
      await assertFreed(admin, app);

      const controller = new AbortController();
      const aborted = streamCsv(sql, { table }, { ...OPTIONS, copy, signal: controller.signal })
        .getReader();
      await aborted.read();
      controller.abort(new Error("stop"));
      await assert.rejects(aborted.read(), /stop/);
      await assertFreed(admin, app);

      const idle = streamCsv(sql, { table }, { ...OPTIONS, copy, idleTimeoutMs: 200 }).getReader();
      await idle.read();
      await new Promise((r) => setTimeout(r, 600));
      await assert.rejects(
        (async () => {
          for (;;) if ((await idle.read()).done) return;
        })(),
        (e: unknown) => e instanceof SluiceError && e.code === "IDLE_TIMEOUT",
      );
      await assertFreed(admin, app);
    }
    // The leader is gone once the parts started: three sessions stream, not four.
    const reader = streamCsv(sql, { table }, OPTIONS).getReader();
    await reader.read();
    assert.equal((await partSessions(admin, app)).length, 3);
    await reader.cancel();
    await assertFreed(admin, app);
  });
});

test("streamLimit() counts a partitioned streamQuery as one slot per part", async () => {
  await withTable(async (sql, table, _app, admin) => {
    const app = new Hono();
    app.use("*", streamLimit({ max: 4 }));
    app.get("/export", (c) =>
      streamQuery(c, sql, { table }, {
        format: "csv",
        partitions: Number(c.req.query("parts")),
        copy: false,
      }));
    const three = await app.request("/export?parts=3");
    assert.equal(three.status, 200);
    // Three of four slots are taken: another three-part stream does not fit, a single one does.
    const busy = await app.request("/export?parts=3");
    assert.equal(busy.status, 503);
    assert.equal((await busy.json()).code, "POOL_BUSY");
    const one = await app.request("/export?parts=1");
    assert.equal(one.status, 200);
    assert.equal((await app.request("/export?parts=1")).status, 503);
    await one.body!.cancel();
    await three.body!.cancel();
    // Freed: a four-part stream takes all four slots; five parts never fit.
    assert.equal((await app.request("/export?parts=5")).status, 503);
    const four = await app.request("/export?parts=4");
    assert.equal(four.status, 200);
    assert.equal((await app.request("/export?parts=1")).status, 503);
    assert.equal((await four.text()).split("\n").length, 200_002);
    assert.equal((await app.request("/export?parts=1")).status, 200);
    void admin;
  });
});

test("a partitioned stream through PgBouncer fails with SNAPSHOT_NOT_SHAREABLE and frees its connections", async () => {
  const bouncer = await startPgBouncer();
  const app = uniqueName("sluice_test_bouncer");
  const sql = postgres(bouncer.url, {
    max: 4,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: app },
  });
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await assert.rejects(
      new Response(streamCsv(sql, "select g as id from generate_series(1, 10) g", {
        partitions: 2,
        partitionKey: "id",
      })).text(),
      (e: unknown) => e instanceof SluiceError && e.code === "SNAPSHOT_NOT_SHAREABLE",
    );
    await assertFreed(admin, app);
    // The pool still works.
    assert.equal((await sql`select 1 as one`)[0]!.one, 1);
  } finally {
    await endPool(sql).catch(() => {});
    await admin.end();
    await bouncer.stop();
  }
});

test("a stream whose parts cannot be planned frees the leader", async () => {
  await withTable(async (sql, table, app, admin) => {
    await assert.rejects(
      new Response(streamCsv(sql, `select * from ${table}`, {
        partitions: 3,
        partitionKey: "nope",
      })).text(),
      (e: unknown) => e instanceof SluiceError && e.code === "PARTITIONS_UNSUPPORTED",
    );
    // All six connections of the pool can still be taken at once: none leaked.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reserved = await Promise.race([
      Promise.all(Array.from({ length: 6 }, () => sql.reserve())),
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error("a connection was not released")), 5000)
      ),
    ]);
    clearTimeout(timer);
    for (const r of reserved) r.release();
    await assert.rejects(
      new Response(streamCsv(sql, `select * from ${table}`, { partitions: 3 })).text(),
      /only a \{ table \} query is split without a partitionKey/,
    );
    // A view has no ctid.
    await admin.unsafe(`create view ${table}_v as select * from ${table}`);
    try {
      await assert.rejects(
        new Response(streamCsv(sql, { table: `${table}_v` }, { partitions: 2 })).text(),
        (e: unknown) => e instanceof SluiceError && e.code === "PARTITIONS_UNSUPPORTED",
      );
    } finally {
      await admin.unsafe(`drop view ${table}_v`);
    }
    // Every part failing at once, at its first fetch.
    await assert.rejects(
      new Response(streamNdjson(sql, `select id, (id / 0) as x from ${table}`, {
        partitions: 3,
        partitionKey: "id",
        copy: false,
      })).text(),
      (e: unknown) => (e as { code?: string }).code === "22012",
    );
    await assertFreed(admin, app);
    // A pool too small for the parts and the leader is refused rather than left waiting.
    await assert.rejects(
      new Response(streamCsv(sql, { table }, { partitions: 6 })).text(),
      RangeError,
    );
  });
});
