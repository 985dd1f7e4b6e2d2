import { test } from "node:test";
import assert from "node:assert/strict";
import { SluiceError, streamBatches, streamRows } from "../../mod.ts";
import type { BatchInfo, RetryInfo } from "../../lib/options.ts";
import { openPostgresSource } from "../../lib/sources/open_postgres_source.ts";
import { busySessions, connect, endPool, sessions, uniqueName, waitFor } from "../_db.ts";
import type { Sql } from "../_db.ts";
import { startPgBouncer } from "../_pgbouncer.ts";

/** Creates a table `name(id int primary key, v text)` with ids 1..n. */
async function createTable(admin: Sql, name: string, n: number): Promise<void> {
  await admin.unsafe(`create table ${name} (id int primary key, v text not null)`);
  await admin.unsafe(
    `insert into ${name} select g, md5(g::text) from generate_series(1, ${n}) g`,
  );
  await admin.unsafe(`analyze ${name}`);
}

/**
 * Creates a function `<table>_slow(id)` that takes 1 s for `id = at`, so the page holding that row
 * can be caught running. It is declared immutable (a lie) because a volatile function in the
 * select list stops PostgreSQL from flattening the page's subquery: every page would then
 * evaluate it for all remaining rows (see the README). The caller drops it.
 */
async function createSlowAt(
  admin: Sql,
  table: string,
  at: number,
  seconds = 1,
): Promise<string> {
  const name = `${table}_slow`;
  await admin.unsafe(`create function ${name}(i int) returns text language plpgsql immutable as $$
    begin if i = ${at} then perform pg_sleep(${seconds}); end if; return null; end $$`);
  return name;
}

/** Asserts that the app holds no transaction open and that its pool drains. */
async function assertClean(sql: Sql, app: string, admin: Sql): Promise<void> {
  const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 2000);
  assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
  await endPool(sql);
}

test(
  "keyset streamBatches() streams 1,000,000 rows through PgBouncer (transaction mode) with exact count and checksum",
  { timeout: 150_000 },
  async () => {
    const admin = connect().sql;
    const table = uniqueName("sluice_keyset_1m");
    const bouncer = await startPgBouncer();
    const app = uniqueName("sluice_keyset_app");
    const through = (await import("postgres")).default(bouncer.url, {
      prepare: false,
      max: 4,
      onnotice: () => {},
      connection: { application_name: app },
    });
    try {
      await createTable(admin, table, 1_000_000);
      let count = 0;
      let idSum = 0n;
      let xor = 0;
      let previous = 0;
      let ordered = true;
      let batches = 0;
      const inTransaction: string[] = [];
      const stream = streamBatches<{ id: number; v: string }>(through, `select * from ${table}`, {
        key: "id",
        onBatch: () => batches++,
      });
      for await (const batch of stream) {
        for (const row of batch) {
          count++;
          if (row.id <= previous) ordered = false;
          previous = row.id;
          idSum += BigInt(row.id);
          xor ^= parseInt(row.v.slice(0, 8), 16) | 0;
        }
        // Between pages nothing may hold a transaction (nor a server connection) open.
        if (batches % 3 === 1) inTransaction.push(...await busySessions(admin, app));
      }
      const [expected] = await admin.unsafe(`
        select count(*)::int as n, sum(id)::text as s,
               bit_xor(('x' || substr(v, 1, 8))::bit(32)::int) as x
        from ${table}`);
      assert.equal(count, expected!.n);
      assert.equal(count, 1_000_000);
      assert.equal(idSum.toString(), expected!.s);
      assert.equal(xor, expected!.x);
      assert.ok(ordered, "rows must arrive in key order");
      assert.ok(batches > 3, `expected several pages, got ${batches}`);
      assert.deepEqual(inTransaction, [], "a page left a transaction open");
      await endPool(through);
    } finally {
      await endPool(through).catch(() => {});
      await bouncer.stop();
      await admin.unsafe(`drop table if exists ${table}`);
      await endPool(admin);
    }
  },
);

test("keyset streamRows() orders by a composite key, both directions, and starts after `after`", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const q = sql`select g % 7 as "Group", g as id, ${"x"} as tag from generate_series(1, 500) g
                  where g > ${10}`;
    const all: { Group: number; id: number }[] = [];
    for await (
      const row of streamRows<{ Group: number; id: number }>(sql, q, {
        key: ["Group", "id"],
        firstBatchRows: 7,
        maxBatchRows: 40,
      })
    ) all.push(row);
    const expected = [...Array(490).keys()].map((i) => i + 11)
      .map((g) => ({ Group: g % 7, id: g }))
      .sort((a, b) => a.Group - b.Group || a.id - b.id);
    assert.deepEqual(all.map((r) => [r.Group, r.id]), expected.map((r) => [r.Group, r.id]));
    assert.deepEqual(Object.keys(all[0]!), ["Group", "id", "tag"], "no key columns added");

    const desc: number[] = [];
    for await (
      const row of streamRows<{ id: number }>(sql, q, {
        key: ["Group", "id"],
        direction: "desc",
        after: [3, 200],
        firstBatchRows: 5,
        maxBatchRows: 13,
      })
    ) desc.push(row.id);
    const wanted = expected.filter((r) => r.Group < 3 || (r.Group === 3 && r.id < 200)).reverse();
    assert.deepEqual(desc, wanted.map((r) => r.id));
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("keyset json output is row_to_json of the user's row only", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const q = "select g as id, g::text || 'é\"' as name, null::int as nothing " +
      "from generate_series(1, 30) g";
    const source = await openPostgresSource(sql, q, { key: "id", output: "json" });
    const texts: string[] = [];
    try {
      for (;;) {
        const batch = await source.fetch(8);
        for (const row of batch.rows) texts.push(new TextDecoder().decode(row[0]!));
        assert.equal(batch.rows[0]?.length ?? 1, 1, "one column a row");
        if (batch.rows.length < 8) break;
      }
    } finally {
      await source.close();
    }
    const expected = await admin.unsafe(
      `select row_to_json(r.*)::text as t from (${q}) r order by id`,
    );
    assert.deepEqual(texts, expected.map((r) => r.t));
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("keyset streams fail clearly on a NULL or duplicate key and reject bad key options", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    const drain = async (q: string, options: object) => {
      for await (const _ of streamRows(sql, q, { firstBatchRows: 10, ...options })) { /* drain */ }
    };
    // A NULL sorting last would fall outside every `where key > …` page: caught at the end.
    await assert.rejects(
      drain("select nullif(g, 17) as k from generate_series(1, 40) g", { key: "k" }),
      (e) => e instanceof SluiceError && e.code === "KEYSET_NULL_KEY",
    );
    // A NULL sorting first (desc) is caught on the row itself.
    await assert.rejects(
      drain("select nullif(g, 17) as k from generate_series(1, 40) g", {
        key: "k",
        direction: "desc",
      }),
      (e) => e instanceof SluiceError && e.code === "KEYSET_NULL_KEY",
    );
    await assert.rejects(
      drain("select g / 2 as k from generate_series(1, 40) g", { key: "k" }),
      (e) => e instanceof SluiceError && e.code === "KEYSET_DUPLICATE_KEY",
    );
    // An identifier is quoted, never spliced: this is a column name that does not exist.
    await assert.rejects(
      drain("select 1 as id", { key: 'id" from pg_class; --' }),
      (e: Error) =>
        e instanceof TypeError && (e.cause as { code?: string }).code === "42703" &&
        /its columns are id/.test(e.message),
    );
    assert.throws(() => streamRows(sql, "select 1", { strategy: "keyset" }), TypeError);
    assert.throws(() => streamRows(sql, "select 1", { key: "" }), TypeError);
    assert.throws(() => streamRows(sql, "select 1", { key: ["a", "a"] }), TypeError);
    // deno-lint-ignore no-explicit-any
    assert.throws(() => streamRows(sql, "select 1", { key: "a", direction: "up" as any }), {
      name: "TypeError",
      message: /Cannot use direction .*current value is "up"/,
    });
    assert.throws(() => streamRows(sql, "select 1", { key: "a", after: [1, 2] }), TypeError);
    assert.throws(() => streamRows(sql, "select 1", { key: "a", retries: -1 }), RangeError);
    assert.throws(() => streamRows(sql, "select 1", { strategy: "cursor", key: "a" }), TypeError);
    assert.throws(() => streamRows(sql, "select 1", { retries: 2 }), TypeError);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

/**
 * Reads `stream` to the end, killing the slow page once it has run 300 ms (inside its slow row):
 * killing whichever page is active could land as a fast page ends, which a pooler absorbs.
 */
async function killMidPage(
  admin: Sql,
  app: string,
  read: () => Promise<number[]>,
): Promise<number[]> {
  let killed = false;
  const killer = (async () => {
    await waitFor(async () => {
      const rows = await admin`
        select pid from pg_stat_activity
        where application_name = ${app} and state = 'active' and query like '%sluice_k%_slow(%'
          and clock_timestamp() - query_start > interval '300 milliseconds'`;
      if (rows.length === 0) return false;
      await admin`select pg_terminate_backend(${rows[0]!.pid})`;
      return killed = true;
    }, 10_000);
  })();
  const ids = await read();
  await killer;
  assert.ok(killed, "the page in flight should have been seen and killed");
  return ids;
}

test(
  "keyset streams resume after pg_terminate_backend mid-page and between pages: no duplicate, no gap",
  { timeout: 60_000 },
  async () => {
    const { sql, app } = connect({ max: 2 });
    const admin = connect().sql;
    const table = uniqueName("sluice_keyset_kill");
    try {
      await createTable(admin, table, 20_000);
      const retries: RetryInfo[] = [];
      const infos: BatchInfo[] = [];
      // The row with id 9000 takes 1 s to produce, so its page can be caught running.
      const q = `select id, v, ${await createSlowAt(admin, table, 9000)}(id) as slow from ${table}`;
      const stream = streamRows<{ id: number }>(sql, q, {
        key: "id",
        maxBatchRows: 1000,
        retryDelayMs: 20,
        onRetry: (info) => retries.push(info),
        onBatch: (info) => infos.push(info),
      });
      const reader = stream.getReader();
      const ids: number[] = [];
      // Between pages: kill every (idle) pooled connection of the app.
      for (let i = 0; i < 150; i++) ids.push((await reader.read()).value!.id);
      for (const s of await sessions(admin, app)) {
        await admin`select pg_terminate_backend(${s.pid})`;
      }
      const rest = await killMidPage(admin, app, async () => {
        const out: number[] = [];
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return out;
          out.push(value.id);
        }
      });
      ids.push(...rest);
      assert.equal(ids.length, 20_000);
      assert.deepEqual(ids, [...Array(20_000).keys()].map((i) => i + 1), "no duplicate, no gap");
      assert.ok(retries.length >= 1, "onRetry reports the retries");
      assert.ok(retries.every((r) => r.delayMs >= 20 && r.attempt >= 1 && r.error));
      assert.equal(infos.reduce((n, b) => n + b.rows, 0), 20_000);
      await assertClean(sql, app, admin);
    } finally {
      await admin.unsafe(`drop table if exists ${table}`);
      await admin.unsafe(`drop function if exists ${table}_slow`);
      await endPool(admin);
    }
  },
);

test(
  "keyset streams through PgBouncer survive a killed backend and a PgBouncer restart",
  { timeout: 60_000 },
  async () => {
    const admin = connect().sql;
    const table = uniqueName("sluice_keyset_pgb_kill");
    const bouncer = await startPgBouncer({ poolSize: 2 });
    let restarting: Promise<void> | undefined;
    const app = uniqueName("sluice_keyset_pgb");
    const sql = (await import("postgres")).default(bouncer.url, {
      prepare: false,
      max: 3,
      onnotice: () => {},
      connection: { application_name: app },
      // Bun 1.4.5: a connect made while PgBouncer restarts can wait for connect_timeout (30 s by
      // default) instead of failing fast; the retry then succeeds.
      connect_timeout: 3,
    });
    try {
      await createTable(admin, table, 20_000);
      const retries: RetryInfo[] = [];
      // A 2 s row, for a loaded machine. Through PgBouncer a kill that lands just after a page
      // finished is absorbed by the pooler (the client sees no error, so no retry).
      const q = `select id, v, ${await createSlowAt(
        admin,
        table,
        12000,
        2,
      )}(id) as slow from ${table}`;
      const reader = streamRows<{ id: number }>(sql, q, {
        key: "id",
        maxBatchRows: 1000,
        retryDelayMs: 50,
        retries: 8, // a loaded machine may take a while to bring PgBouncer back
        onRetry: (info) => retries.push(info),
      }).getReader();
      const ids: number[] = [];
      for (let i = 0; i < 3000; i++) ids.push((await reader.read()).value!.id);
      // The pooler dies between pages and comes back 300 ms later on the same port.
      await bouncer.kill();
      restarting = new Promise((r) => setTimeout(r, 300)).then(() => bouncer.start());
      for (let i = 0; i < 3000; i++) ids.push((await reader.read()).value!.id);
      assert.ok(retries.length >= 1, "the restart should have cost at least one retry");
      const before = retries.length;
      ids.push(
        ...await killMidPage(admin, app, async () => {
          const out: number[] = [];
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return out;
            out.push(value.id);
          }
        }),
      );
      assert.ok(retries.length > before, "the killed page should have been retried");
      assert.deepEqual(ids, [...Array(20_000).keys()].map((i) => i + 1), "no duplicate, no gap");
    } finally {
      await restarting?.catch(() => {}); // else a late start would outlive stop()
      await endPool(sql).catch(() => {});
      await bouncer.stop();
      await admin.unsafe(`drop table if exists ${table}`);
      await admin.unsafe(`drop function if exists ${table}_slow`);
      await endPool(admin);
    }
  },
);

test("keyset streams fail with CONNECTION_LOST once the retries are used up", async () => {
  const bouncer = await startPgBouncer();
  const sql = (await import("postgres")).default(bouncer.url, {
    prepare: false,
    max: 2,
    onnotice: () => {},
    connect_timeout: 2,
  });
  try {
    const retries: RetryInfo[] = [];
    const reader = streamRows(sql, "select g from generate_series(1, 1000) g", {
      key: "g",
      firstBatchRows: 10,
      retries: 2,
      retryDelayMs: 10,
      onRetry: (info) => retries.push(info),
    }).getReader();
    await reader.read();
    await bouncer.kill();
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, (e) => e instanceof SluiceError && e.code === "CONNECTION_LOST" && e.cause !== undefined);
    assert.deepEqual(retries.map((r) => [r.attempt, r.delayMs]), [[1, 10], [2, 20]]);
  } finally {
    await endPool(sql).catch(() => {});
    await bouncer.stop();
  }
});

test(
  "keyset streams see every row that stays unchanged exactly once, in key order, under concurrent writes",
  { timeout: 60_000 },
  async () => {
    const { sql, app } = connect();
    const admin = connect().sql;
    const writer = connect().sql;
    const table = uniqueName("sluice_keyset_writes");
    const n = 30_000;
    try {
      // Even ids only, so inserts can land between existing keys.
      await admin.unsafe(`create table ${table} (id int primary key, v text not null)`);
      await admin.unsafe(
        `insert into ${table} select g * 2, md5(g::text) from generate_series(1, ${n}) g`,
      );
      const touched = new Set<number>();
      let stop = false;
      let writes = 0;
      const writing = (async () => {
        let seed = 7;
        const rand = (m: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % m;
        while (!stop) {
          const a = (rand(n) + 1) * 2, b = (rand(n) + 1) * 2, c = rand(n) * 2 + 1;
          touched.add(a), touched.add(b);
          await writer.begin(async (tx) => {
            await tx.unsafe(`delete from ${table} where id = $1`, [a]);
            await tx.unsafe(`update ${table} set v = 'changed' where id = $1`, [b]);
            await tx.unsafe(
              `insert into ${table} values ($1, 'new') on conflict (id) do nothing`,
              [c],
            );
          });
          writes++;
        }
      })();
      const seen: number[] = [];
      try {
        for await (
          const batch of streamBatches<{ id: number }>(sql, `select id, v from ${table}`, {
            key: "id",
            maxBatchRows: 300,
          })
        ) {
          for (const row of batch) seen.push(row.id);
          await new Promise((r) => setTimeout(r, 2)); // let the writer interleave
        }
      } finally {
        stop = true;
        await writing;
      }
      assert.ok(writes > 20, `the writer should have interleaved, made ${writes} writes`);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i]! > seen[i - 1]!, `key order broken at ${i}: ${seen[i - 1]}, ${seen[i]}`);
      }
      const seenSet = new Set(seen);
      let missing = 0;
      for (let id = 2; id <= 2 * n; id += 2) {
        if (!touched.has(id) && !seenSet.has(id)) missing++;
      }
      assert.equal(missing, 0, "every untouched row appears");
      await assertClean(sql, app, admin);
    } finally {
      await admin.unsafe(`drop table if exists ${table}`);
      await endPool(writer);
      await endPool(admin);
    }
  },
);

test(
  "cursor streams through PgBouncer: transaction mode works with prepare: false (one transaction), statement mode fails with CURSOR_LOST",
  {
    timeout: 60_000,
  },
  async () => {
    const postgres = (await import("postgres")).default;
    const tx = await startPgBouncer({ poolSize: 2 });
    const st = await startPgBouncer({ poolMode: "statement" });
    const a = postgres(tx.url, { prepare: false, max: 6, onnotice: () => {} });
    const b = postgres(st.url, { prepare: false, max: 2, onnotice: () => {} });
    try {
      // More streams than server connections: each cursor pins one for its whole transaction, the
      // others wait for it in PgBouncer's queue, and every stream is complete.
      const counts = await Promise.all([0, 1, 2, 3].map(async () => {
        let n = 0;
        for await (
          const batch of streamBatches(a, "select g from generate_series(1, 50000) g", {
            firstBatchRows: 10,
            maxBatchRows: 5000,
          })
        ) n += batch.length;
        return n;
      }));
      assert.deepEqual(counts, [50000, 50000, 50000, 50000]);
      await assert.rejects(
        async () => {
          for await (const _ of streamBatches(b, "select 1")) { /* drain */ }
        },
        // PgBouncer sends its reason (08P01 "… not allowed in statement pooling mode") and hangs
        // up; when the reason arrives first the stream fails with CURSOR_LOST, otherwise with the
        // closed connection. Either way before any row.
        (e) =>
          (e instanceof SluiceError && e.code === "CURSOR_LOST" && /keyset/.test(e.message) &&
            (e.cause as { code?: string }).code === "08P01") ||
          (e as { code?: string }).code === "CONNECTION_CLOSED",
      );
    } finally {
      await endPool(a).catch(() => {});
      await endPool(b).catch(() => {});
      await tx.stop();
      await st.stop();
    }
  },
);

test(
  "cursor streams through PgBouncer fail, never truncate, when the pooler ends an idle transaction",
  {
    timeout: 30_000,
  },
  async () => {
    const postgres = (await import("postgres")).default;
    const bouncer = await startPgBouncer({ settings: { idle_transaction_timeout: 1 } });
    const sql = postgres(bouncer.url, { prepare: false, max: 2, onnotice: () => {} });
    try {
      const reader = streamBatches(sql, "select g from generate_series(1, 100000) g", {
        firstBatchRows: 10,
      }).getReader();
      assert.equal((await reader.read()).value?.length, 10);
      await new Promise((r) => setTimeout(r, 2500)); // a slow consumer
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break;
      }, (e) => e instanceof SluiceError && e.code === "CURSOR_LOST" && /keyset/.test(e.message));
      // The same pause costs a keyset stream nothing: no transaction is open between pages.
      const keyset = streamBatches<{ g: number }>(sql, "select g from generate_series(1, 3000) g", {
        key: "g",
        firstBatchRows: 10,
      }).getReader();
      let n = (await keyset.read()).value!.length;
      await new Promise((r) => setTimeout(r, 2500));
      for (;;) {
        const { done, value } = await keyset.read();
        if (done) break;
        n += value.length;
      }
      assert.equal(n, 3000);
    } finally {
      await endPool(sql).catch(() => {});
      await bouncer.stop();
    }
  },
);

test("asCursorLost() maps a vanished cursor to CURSOR_LOST and leaves other errors alone", async () => {
  const { asCursorLost } = await import("../../lib/sources/postgres_cursor.ts");
  const { sql, app } = connect();
  const admin = connect().sql;
  try {
    // The real server errors a pooler causes: a FETCH on a cursor of another server connection,
    // and a DECLARE outside a transaction.
    const fetchError = await sql.unsafe("fetch 10 from sluice_cursor").catch((e) => e);
    const declareError = await sql.unsafe("declare c no scroll cursor for select 1").catch((e) =>
      e
    );
    assert.equal(fetchError.code, "34000");
    assert.equal(declareError.code, "25P01");
    for (const e of [fetchError, declareError]) {
      const mapped = asCursorLost(e);
      assert.ok(mapped instanceof SluiceError && mapped.code === "CURSOR_LOST");
      assert.match((mapped as Error).message, /strategy: "keyset"/);
      assert.equal((mapped as Error).cause, e);
    }
    const other = new Error("x");
    assert.equal(asCursorLost(other), other);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test(
  "keyset streams work through PgBouncer even when the pool prepares statements (postgres.js default)",
  {
    timeout: 60_000,
  },
  async () => {
    const bouncer = await startPgBouncer({ poolSize: 2 });
    const sql = (await import("postgres")).default(bouncer.url, { max: 4, onnotice: () => {} });
    try {
      const counts = await Promise.all([0, 1, 2, 3].map(async (i) => {
        let n = 0;
        const q = sql`select g, ${i}::int as stream from generate_series(1, 5000) g`;
        for await (
          const batch of streamBatches(sql, q, { key: "g", firstBatchRows: 10, maxBatchRows: 300 })
        ) n += batch.length;
        return n;
      }));
      assert.deepEqual(counts, [5000, 5000, 5000, 5000]);
    } finally {
      await endPool(sql).catch(() => {});
      await bouncer.stop();
    }
  },
);
