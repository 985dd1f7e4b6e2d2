// Partitioned reads (issue #16): N parts over N connections in one snapshot, as one stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { streamCsv, streamJsonArray, streamNdjson, streamRows, streamSse } from "../../mod.ts";
import { openSource } from "../../lib/sources/open_source.ts";
import type { MergeStats } from "../../lib/partitions/merge_parts.ts";
import { planParts } from "../../lib/partitions/plan_parts.ts";
import { connect, DATABASE_URL, endPool, uniqueName } from "../_db.ts";
import type { Sql } from "../_db.ts";

const text = (s: ReadableStream<Uint8Array>): Promise<string> => new Response(s).text();
const sorted = (s: string): string[] => s.split("\n").filter((l) => l !== "").sort();

async function withTable(
  rows: number,
  fn: (sql: Sql, table: string, app: string, admin: Sql) => Promise<void>,
  options: Record<string, unknown> = {},
): Promise<void> {
  const { sql, app } = connect({ max: 6, ...options });
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const table = uniqueName("parts");
  await admin.unsafe(`create table ${table} as
    select g as id, md5(g::text) as note, timestamptz '2024-01-01' + g * interval '1 minute' as at,
           case when g % 7 = 0 then null else g % 100 end as n
    from generate_series(1, ${rows}) g`);
  try {
    await fn(sql, table, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await admin.unsafe(`drop table if exists ${table}`);
    await admin.end();
  }
}

test("streamCsv() reads a { table } in ctid ranges: same rows, header once; ordered is the single stream", async () => {
  await withTable(30_000, async (sql, table) => {
    for (const copy of [true, false]) {
      const single = await text(streamCsv(sql, { table }, { copy }));
      const parts = await text(streamCsv(sql, { table }, { copy, partitions: 3 }));
      assert.equal(parts.split("\n").filter((l) => l.startsWith("id,")).length, 1);
      assert.ok(parts.startsWith("id,note,at,n\n"));
      assert.deepEqual(sorted(parts), sorted(single));
      const ordered = await text(
        streamCsv(sql, { table }, {
          copy,
          partitions: 3,
          ordered: true,
          partitionBufferBytes: 4096,
        }),
      );
      assert.equal(ordered, single);
    }
    // The table form alone: columns and a where with parameters.
    const some = await text(
      streamCsv(sql, { table, columns: ["id"], where: sql`id <= ${3}` }, { header: false }),
    );
    assert.equal(some, "1\n2\n3\n");
  });
});

test("the JSON formats and streamRows() split any query by partitionKey, framing once", async () => {
  await withTable(20_000, async (sql, table) => {
    const query = `select * from ${table}`;
    for (const key of ["id", "at", "n"]) {
      for (const copy of [true, false]) {
        const opts = { partitions: 4, partitionKey: key, copy };
        assert.deepEqual(
          sorted(await text(streamNdjson(sql, query, opts))),
          sorted(await text(streamNdjson(sql, query, { copy }))),
          `ndjson by ${key}, copy ${copy}`,
        );
        const array = JSON.parse(await text(streamJsonArray(sql, query, opts))) as unknown[];
        const single = JSON.parse(await text(streamJsonArray(sql, query, { copy }))) as unknown[];
        const byId = (a: unknown[]) => a.map((r) => JSON.stringify(r)).sort();
        assert.deepEqual(byId(array), byId(single));
      }
    }
    // ordered: parts in key order, so a query ordered by the key comes out as one read of it.
    const byId = `select * from ${table} order by id`;
    for (const copy of [true, false]) {
      assert.equal(
        await text(streamNdjson(sql, byId, {
          copy,
          partitions: 3,
          partitionKey: "id",
          ordered: true,
          partitionBufferBytes: 4096,
        })),
        await text(streamNdjson(sql, byId, { copy })),
      );
    }
    const ids: number[] = [];
    for await (
      const row of streamRows<{ id: number }>(sql, byId, {
        partitions: 3,
        partitionKey: "id",
        ordered: true,
        partitionBufferBytes: 2048,
      })
    ) ids.push(row.id);
    assert.deepEqual(ids, Array.from({ length: 20_000 }, (_, i) => i + 1));

    // SSE: each batch's rows event is a whole JSON array; the end event comes once.
    const rowsOf = (sse: string): string[] => {
      const events = sse.split("\n\n").filter((e) => e !== "");
      assert.equal(events.filter((e) => e.startsWith("event: end")).length, 1);
      return events.filter((e) => e.startsWith("event: rows")).flatMap((e) =>
        (JSON.parse(
          e.split("\n").slice(1).map((l) => l.slice("data: ".length)).join("\n"),
        ) as unknown[]).map((r) => JSON.stringify(r))
      ).sort();
    };
    assert.deepEqual(
      rowsOf(await text(streamSse(sql, query, { partitions: 2, partitionKey: "id" }))),
      rowsOf(await text(streamSse(sql, query))),
    );

    let count = 0;
    const seen = new Set<number>();
    for await (
      const row of streamRows<{ id: number }>(
        sql,
        sql`select * from ${sql(table)} where id > ${100}`,
        { partitions: 3, partitionKey: "id" },
      )
    ) count++, seen.add(row.id);
    assert.equal(count, 19_900);
    assert.equal(seen.size, 19_900);
  });
});

test("partitionKey ranges follow pg_stats, so a skewed key still spreads the rows", async () => {
  await withTable(1, async (sql, table, _app, admin) => {
    // 90 % of the rows have ids up to 9,000; the rest are spread up to 10^9.
    await admin.unsafe(`insert into ${table} (id)
      select case when g <= 9000 then g else g * 100000 end from generate_series(2, 10000) g`);
    const partSizes = async (): Promise<number[]> => {
      const leader = await sql.reserve();
      try {
        await leader`begin isolation level repeatable read read only`;
        const queries = await planParts(
          sql,
          leader,
          {
            fragment: sql`select id from ${sql(table)}`,
          },
          4,
          "id",
        );
        const out: number[] = [];
        for (const q of queries) {
          // deno-lint-ignore no-explicit-any
          out.push((await leader`select count(*)::int as c from (${q as any}) x`)[0]!.c);
        }
        await leader`commit`;
        return out;
      } finally {
        leader.release();
      }
    };
    // Without statistics: min/max split evenly, which the skew defeats.
    const even = await partSizes();
    assert.equal(even.reduce((a, b) => a + b, 0), 10_000);
    assert.ok(even[0]! >= 9000, `even split: ${even}`);
    await admin.unsafe(`analyze ${table}`);
    const byStats = await partSizes();
    assert.equal(byStats.length, 4);
    assert.equal(byStats.reduce((a, b) => a + b, 0), 10_000);
    assert.ok(Math.max(...byStats) <= 3500, `histogram split: ${byStats}`);
  });
});

test("ordered holds at most partitionBufferBytes (plus one batch) per part not yet due", async () => {
  await withTable(40_000, async (sql, table) => {
    for (const copy of [true, false]) {
      const limit = 64 * 1024;
      let bytes = 0;
      // The merged source is reached through openSource to read its stats.
      const s = await openSource(sql, { table }, {
        partitions: 3,
        ordered: true,
        partitionBufferBytes: limit,
        copyAs: copy
          ? { format: "csv", sink: () => (_b, s0, e) => void (bytes += e - s0) }
          : undefined,
        mapRow: (raw) => raw,
      });
      const source = s as unknown as { stats(): MergeStats };
      try {
        for (;;) {
          const batch = await s.fetch(copy ? 1_000_000 : 2000);
          if (batch.done ?? (batch.count ?? batch.rows.length) < 2000) break;
        }
      } finally {
        await s.close();
      }
      assert.ok(!copy || bytes > 2_000_000);
      const peaks = source.stats().peakHeldBytes;
      assert.equal(peaks[0], 0);
      // A COPY read stops at the limit (one row over); a FETCH of 2000 rows of ~60 B overshoots by
      // at most one batch.
      for (const peak of peaks.slice(1)) {
        assert.ok(peak > 0 && peak <= limit + (copy ? 200 : 2000 * 80), `peak ${peak}`);
      }
    }
  });
});

test("every part reads one snapshot while writers insert, update and delete", async () => {
  await withTable(20_000, async (sql, table, _app, admin) => {
    await admin.unsafe(`alter table ${table} add primary key (id), drop column at`);
    const writers = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
    const reader = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
    let stop = false;
    let changes = 0;
    const write = async (w: number): Promise<void> => {
      let next = 1_000_000 * (w + 1);
      while (!stop) {
        const id = 1 + Math.floor(Math.random() * 20_000);
        await writers.begin(async (tx) => {
          await tx.unsafe(
            `update ${table} set note = md5(random()::text), n = coalesce(n, 0) + 1 where id = $1`,
            [id],
          );
          await tx.unsafe(`delete from ${table} where id = $1`, [id + 1]);
          await tx.unsafe(`insert into ${table} (id, note) values ($1, 'new')`, [next++]);
        });
        changes++;
      }
    };
    const readAt = async (snapshot: string): Promise<string[]> =>
      await reader.begin("isolation level repeatable read read only", async (tx) => {
        await tx.unsafe(`set transaction snapshot '${snapshot}'`);
        const rows = await tx.unsafe(
          `select id || ',' || note || ',' || coalesce(n::text, '') as line from ${table}`,
        );
        return rows.map((r) => r.line as string).sort();
      });
    const running = [write(0), write(1)];
    try {
      await new Promise((r) => setTimeout(r, 200));
      for (
        const [label, query, extra] of [
          ["ctid", { table }, {}],
          ["key", `select * from ${table}`, { partitionKey: "id" }],
        ] as const
      ) {
        let reference: string[] | undefined;
        const before = changes;
        const out = await text(
          streamCsv(sql, query, {
            ...extra,
            header: false,
            copy: false,
            partitions: 3,
            targetBatchBytes: 8192,
            onSnapshot: async (id) => void (reference = await readAt(id)),
            // Slow the parts down so the writers run all along.
            onBatch: () => {},
          }).pipeThrough(
            new TransformStream({
              async transform(chunk, c) {
                await new Promise((r) => setTimeout(r, 2));
                c.enqueue(chunk);
              },
            }),
          ),
        );
        assert.ok(
          changes - before > 5,
          `${label}: writers ran during the read (${changes - before})`,
        );
        const lines = sorted(out);
        assert.ok(reference, "onSnapshot ran");
        assert.equal(lines.length, reference!.length, `${label}: row count`);
        assert.deepEqual(lines, reference, `${label}: the multiset of rows`);
        const now =
          (await admin.unsafe(`select count(*)::int as c from ${table} where note = 'new'`))[0]!.c;
        assert.ok(now > reference!.filter((l) => l.includes(",new")).length, "the table moved on");
      }
    } finally {
      stop = true;
      await Promise.allSettled(running);
      await writers.end();
      await reader.end();
    }
  });
});
