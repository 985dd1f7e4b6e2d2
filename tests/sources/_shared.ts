// The behaviours every driver must share (count/checksum, byte tuning, decoding, every exit path,
// format oracles), written once against a small harness per driver. Not a test file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SluiceError, streamBatches, streamRows } from "../../mod.ts";
import type { BatchInfo } from "../../mod.ts";
import type { Database } from "../../lib/sources/open_source.ts";
import { streamCsv } from "../../lib/stream_csv.ts";
import { streamJsonArray } from "../../lib/stream_json_array.ts";
import { streamNdjson } from "../../lib/stream_ndjson.ts";
import { streamSse } from "../../lib/stream_sse.ts";
import { sql as ksql } from "kysely";
import { inArray, sql as dsql } from "drizzle-orm";
import { pgSchema, QueryBuilder, text } from "drizzle-orm/pg-core";
import { kysely } from "../_builders.ts";

/** What the shared tests need from a driver. */
export interface DriverHarness {
  /** The driver's name in test names. */
  name: string;
  /** The instance sluice streams from. */
  db: Database;
  /** Runs SQL with the driver's own API and returns its row objects. */
  rows(text: string): Promise<Record<string, unknown>[]>;
  /** `COPY (text) TO STDOUT (FORMAT csv, HEADER)` as the server prints it. */
  copyCsv(text: string): Promise<string>;
  /** The SQLSTATE of a driver error. */
  sqlState(error: unknown): string | undefined;
  /** Resolves true once nothing of the stream is left (no transaction, cursor or busy session). */
  isClean(): Promise<boolean>;
  /** Resolves true when nothing was opened at all (before a first read). */
  isUntouched(): Promise<boolean>;
  /** Rows in the count/checksum test. */
  bigRows: number;
}

/** Polls `check` until true or the deadline. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const TYPED =
  `select g as id, g::int8 as big, (g * 1.5)::numeric(10,2) as amount, g % 2 = 0 as even,
  ('2024-01-01'::timestamptz + g * interval '1 hour') as at, '2024-01-02'::date + g as day,
  'row ' || g || ' "é" ,;' as label, case when g % 3 = 0 then null else g end as maybe,
  json_build_object('g', g, 'tags', array['a', 'b']) as doc, array[g, g + 1] as pair,
  (g * 0.25)::float8 as ratio
  from generate_series(1, 500) g`;

/**
 * Registers the shared driver tests for `harness()` (called once per test, so each test gets its own
 * database handle when the harness makes one).
 *
 * @param name The driver's name.
 * @param harness Makes the harness; `end` frees it.
 */
export function sharedDriverTests(
  name: string,
  harness: () => Promise<DriverHarness & { end(): Promise<void> }>,
): void {
  const clean = async (h: DriverHarness): Promise<void> => {
    // Bounded even if the check itself hangs (a stuck admin connection), so a failure is quick.
    const hung = new Promise<boolean>((r) => setTimeout(r, 8000, false));
    const ok = await Promise.race([waitFor(() => h.isClean(), 3000), hung]);
    assert.ok(ok, "the stream left its transaction open (or the check did not answer)");
  };

  test(`${name}: streamBatches() streams rows with exact count and checksum`, {
    timeout: 90_000,
  }, async () => {
    const h = await harness();
    try {
      const q = `select g as id, md5(g::text) as h from generate_series(1, ${h.bigRows}) g`;
      let count = 0;
      let idSum = 0;
      let xor = 0;
      for await (const batch of streamBatches<{ id: number; h: string }>(h.db, q)) {
        for (const row of batch) {
          count++;
          idSum += row.id;
          xor ^= parseInt(row.h.slice(0, 8), 16) | 0;
        }
      }
      const [expected] = await h.rows(`select count(*)::int as n, sum(g)::float8 as s,
        bit_xor(('x' || substr(md5(g::text), 1, 8))::bit(32)::int) as x
        from generate_series(1, ${h.bigRows}) g`);
      assert.equal(count, expected!.n);
      assert.equal(idSum, expected!.s);
      assert.equal(xor, expected!.x);
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: streamBatches() fetches nothing before the consumer reads`, async () => {
    const h = await harness();
    try {
      const stream = streamBatches(h.db, "select g from generate_series(1, 10) g");
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(await h.isUntouched(), "a connection was taken before any read");
      const reader = stream.getReader();
      assert.equal((await reader.read()).value?.length, 10);
      assert.equal((await reader.read()).done, true);
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: streamBatches() keeps full batches within ±25% of targetBatchBytes`, {
    timeout: 60_000,
  }, async () => {
    const h = await harness();
    try {
      const target = 200_000;
      for (const [width, rows] of [[20, 60_000], [1000, 2_000], [20_000, 200]] as const) {
        const infos: BatchInfo[] = [];
        const q = `select repeat('x', ${width}) as v from generate_series(1, ${rows})`;
        let seen = 0;
        const options = { targetBatchBytes: target, onBatch: (i: BatchInfo) => infos.push(i) };
        for await (const b of streamBatches(h.db, q, options)) seen += b.length;
        assert.equal(seen, rows);
        const full = infos.slice(2).filter((i) => i.nextRows !== 0);
        assert.ok(full.length >= 2, `width ${width}: only ${full.length} full batches to check`);
        for (const info of full) {
          const ratio = info.bytes / target;
          assert.ok(
            ratio >= 0.75 && ratio <= 1.25,
            `width ${width}: batch ${info.index} ${ratio}×`,
          );
        }
        assert.equal(infos[0]!.rows, 100);
      }
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: streamRows() decodes rows as the driver itself does`, async () => {
    const h = await harness();
    try {
      const expected = await h.rows(TYPED);
      const got: unknown[] = [];
      for await (const row of streamRows(h.db, TYPED, { firstBatchRows: 7 })) got.push(row);
      assert.deepEqual(got, expected);
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: a consumer that breaks early, cancels or aborts frees the database`, async () => {
    const h = await harness();
    try {
      const q = "select g from generate_series(1, 50000) g";
      for await (const row of streamRows<{ g: number }>(h.db, q)) if (row.g === 150) break;
      await clean(h);

      const reader = streamBatches(h.db, q).getReader();
      await reader.read();
      await reader.cancel();
      await clean(h);

      const controller = new AbortController();
      const reason = new Error("stop");
      const aborted = streamBatches(h.db, q, { signal: controller.signal }).getReader();
      await aborted.read();
      controller.abort(reason);
      await assert.rejects(aborted.read(), (e) => e === reason);
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: a consumer that stops reading is cut off after idleTimeoutMs`, async () => {
    const h = await harness();
    try {
      const reader = streamBatches(h.db, "select g from generate_series(1, 100000) g", {
        idleTimeoutMs: 150,
      }).getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 400));
      await assert.rejects(
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })(),
        (e) => e instanceof SluiceError && e.code === "IDLE_TIMEOUT",
      );
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: a PostgreSQL error mid-stream passes through unchanged`, async () => {
    const h = await harness();
    try {
      const q = "select 1 / (g - 3000) as v from generate_series(1, 5000) g";
      await assert.rejects(
        (async () => {
          for await (const _ of streamBatches(h.db, q)) { /* drain */ }
        })(),
        (e) => h.sqlState(e) === "22012",
      );
      await clean(h);
      await assert.rejects(
        (async () => {
          for await (const _ of streamBatches(h.db, "select * from sluice_no_such_table")) {
            /* drain */
          }
        })(),
        (e) => h.sqlState(e) === "42P01",
      );
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: NDJSON, JSON, CSV and SSE match PostgreSQL's own output`, async () => {
    const h = await harness();
    try {
      const json = (await h.rows(`select row_to_json(t.*)::text as j from (${TYPED}) t`))
        .map((r) => r.j as string);
      const options = { firstBatchRows: 3, targetBatchBytes: 4096 };
      const ndjson = await new Response(streamNdjson(h.db, TYPED, options)).text();
      assert.equal(ndjson, json.map((j) => j + "\n").join(""));
      const array = await new Response(streamJsonArray(h.db, TYPED, options)).text();
      assert.deepEqual(JSON.parse(array), json.map((j) => JSON.parse(j)));
      const csv = await new Response(streamCsv(h.db, TYPED, options)).text();
      assert.equal(csv, await h.copyCsv(TYPED));
      const sse = await new Response(streamSse(h.db, TYPED, options)).text();
      assert.match(sse, /event: end\ndata: \{"rows":500\}\n\n$/);
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: { query, params }, Kysely's and Drizzle's queries carry their parameters`, async () => {
    const h = await harness();
    try {
      const series = "select g from generate_series(1, $1::int) g where g > $2::int";
      const pgType = pgSchema("pg_catalog").table("pg_type", { typname: text("typname") });
      const forms = {
        "{ query, params }": { query: series, params: [5, 2] },
        "Kysely sql": ksql`select g from generate_series(1, ${5}::int) g where g > ${2}::int`
          .compile(kysely),
        "Drizzle sql": dsql`select g from generate_series(1, ${5}::int) g where g > ${2}::int`,
      };
      for (const [form, query] of Object.entries(forms)) {
        const rows: unknown[] = [];
        for await (const row of streamRows(h.db, query)) rows.push(row);
        assert.deepEqual(rows, [{ g: 3 }, { g: 4 }, { g: 5 }], form);
        const ndjson = await new Response(streamNdjson(h.db, query)).text();
        assert.equal(ndjson, '{"g":3}\n{"g":4}\n{"g":5}\n', form);
      }
      const types = {
        "Kysely builder": kysely.selectFrom("pg_catalog.pg_type").select("typname")
          .where("typname", "in", ["int4", "int8"]).orderBy("typname").compile(),
        "Drizzle builder": new QueryBuilder().select({ typname: pgType.typname }).from(pgType)
          .where(inArray(pgType.typname, ["int4", "int8"])).orderBy(pgType.typname),
      };
      for (const [form, query] of Object.entries(types)) {
        const csv = await new Response(streamCsv(h.db, query)).text();
        assert.equal(csv, "typname\nint4\nint8\n", form);
      }
      await clean(h);
    } finally {
      await h.end();
    }
  });

  test(`${name}: a SQL string runs as one statement: a second one is refused, not run`, async () => {
    const h = await harness();
    const table = `sluice_one_statement_${Math.random().toString(36).slice(2, 8)}`;
    try {
      await h.rows(`create table ${table} (id int)`);
      await h.rows(`insert into ${table} values (1)`);
      const query = `select id from ${table}; commit; delete from ${table}`;
      await assert.rejects(
        async () => {
          for await (const _ of streamRows(h.db, query)) { /* drain */ }
        },
        (e) => h.sqlState(e) === "42601",
      );
      assert.deepEqual(await h.rows(`select count(*)::int as n from ${table}`), [{ n: 1 }]);
      await clean(h);
    } finally {
      await h.rows(`drop table if exists ${table}`).catch(() => {});
      await h.end();
    }
  });
}
