import { test } from "node:test";
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { query as sqlQuery } from "@electric-sql/pglite/template";
import { streamBatches, streamRows } from "../../mod.ts";
import { sharedDriverTests } from "./_shared.ts";
import type { DriverHarness } from "./_shared.ts";

/** Resolves with `p`, or with `fallback` after `ms` (a query queued behind a held lock). */
function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([p, new Promise<T>((r) => setTimeout(() => r(fallback), ms))]);
}

// PGlite takes seconds to start (more on a busy machine), so the file shares one instance; the last
// test closes it.
let shared: PGlite | undefined;

async function pgliteHarness(): Promise<DriverHarness & { end(): Promise<void> }> {
  const pg = shared ??= new PGlite();
  await pg.waitReady;
  const free = async (): Promise<boolean> => {
    const check = pg.query<{ n: number }>(
      "select count(*)::int as n from pg_cursors where name <> ''",
    )
      .then((r) => r.rows[0]!.n === 0);
    return await within(check, 500, false);
  };
  return {
    name: "PGlite",
    db: pg,
    bigRows: 100_000,
    rows: async (text) => (await pg.query<Record<string, unknown>>(text)).rows,
    copyCsv: async (text) => {
      const r = await pg.query(`copy (${text}) to '/dev/blob' with (format csv, header)`);
      return await r.blob!.text();
    },
    sqlState: (e) => (e as { code?: string }).code,
    isClean: free,
    isUntouched: free,
    end: async () => {},
  };
}

sharedDriverTests("PGlite", pgliteHarness);

test("PGlite: a second stream waits for the first to close (one connection)", async () => {
  const h = await pgliteHarness();
  try {
    const first = streamBatches(h.db, "select g from generate_series(1, 100000) g").getReader();
    await first.read();
    let secondDone = false;
    const second = (async () => {
      let n = 0;
      for await (const b of streamBatches(h.db, "select 1 as one")) n += b.length;
      secondDone = true;
      return n;
    })();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(secondDone, false, "the second stream ran inside the first one's transaction");
    await first.cancel();
    assert.equal(await second, 1);
  } finally {
    await h.end();
  }
});

test("PGlite: parameters from the query template tag", async () => {
  const h = await pgliteHarness();
  try {
    const rows: unknown[] = [];
    const q = sqlQuery`select g from generate_series(1, ${5}::int) g where g > ${2}::int`;
    for await (const row of streamRows(h.db, q)) rows.push(row);
    assert.deepEqual(rows, [{ g: 3 }, { g: 4 }, { g: 5 }]);
  } finally {
    await h.end();
  }
});

test("PGlite: the instance closes once every stream is done", async () => {
  const pg = shared ??= new PGlite();
  await pg.waitReady;
  shared = undefined;
  await within(pg.close(), 5000, undefined);
  assert.equal(pg.closed, true);
});
