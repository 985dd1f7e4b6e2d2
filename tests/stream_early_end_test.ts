// A stream that ends before its first row (consumer cancel, abort, an HTTP client that gives up)
// must stop the query and free its connection at once, on the COPY path as on the cursor path:
// a COPY answers nothing until its first row, so the end arrives while the source is opening.
import { test } from "node:test";
import assert from "node:assert/strict";
import { streamCsv, streamJsonArray, streamNdjson, streamRows, streamSse } from "../mod.ts";
import { busySessions, connect, endPool, waitFor } from "./_db.ts";
import type { Sql } from "./_db.ts";
import { assertClean } from "./formats/_oracle.ts";
import { serve } from "./hono/_servers/listen.ts";

const SLOW = "select pg_sleep(3)::text as x";

const FORMATS = {
  streamCsv,
  streamNdjson,
  streamJsonArray,
  streamSse,
  streamRows: (sql: Sql, q: string, o: { copy?: boolean; signal?: AbortSignal }) =>
    streamRows(sql, q, o),
} as const;

/** `select 1` on a pool of one answers within `ms`: the stream gave its connection back. */
async function poolAnswers(sql: Sql, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([sql`select 1 as one`.then((r) => r[0]!.one === 1), late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const [name, open] of Object.entries(FORMATS)) {
  for (const copy of [true, false]) {
    test(`${name}() cancelled before its first row stops the query and frees the connection (copy: ${copy})`, async () => {
      const admin = connect().sql;
      const { sql, app } = connect({ max: 1 });
      try {
        const reader = open(sql, SLOW, { copy }).getReader();
        const first = reader.read().catch(() => ({ done: true, value: undefined }));
        await new Promise((r) => setTimeout(r, 500));
        const started = performance.now();
        await reader.cancel();
        // The query was cancelled: the pool of one serves again well before pg_sleep(3) ends.
        assert.ok(await poolAnswers(sql, 1500), "the connection was not given back");
        assert.ok(performance.now() - started < 1500);
        assert.deepEqual((await first).done, true);
        await assertClean(sql, app, admin);
      } finally {
        await endPool(sql).catch(() => {});
        await endPool(admin);
      }
    });
  }
}

for (const copy of [true, false]) {
  test(`streamNdjson() aborted before its first row ends at once with the signal's reason (copy: ${copy})`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect({ max: 1 });
    try {
      const controller = new AbortController();
      const stream = streamNdjson(sql, SLOW, { copy, signal: controller.signal });
      setTimeout(() => controller.abort(new Error("gave up")), 400);
      const started = performance.now();
      await assert.rejects(async () => {
        for await (const _ of stream) { /* no row comes */ }
      }, /gave up/);
      const took = performance.now() - started;
      assert.ok(took < 1000, `the stream ended ${Math.round(took)} ms after it started`);
      assert.ok(await poolAnswers(sql, 1000), "the connection was not given back");
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await endPool(admin);
    }
  });
}

test("new Response(streamCsv()) frees every connection when clients give up before the first row", {
  timeout: 30_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 4 });
  const server = await serve((req) =>
    new URL(req.url).pathname === "/slow"
      ? new Response(streamCsv(sql, SLOW))
      : new Response(streamCsv(sql, "select 42 as answer"))
  );
  try {
    const url = `http://127.0.0.1:${server.port}`;
    const gaveUp = await Promise.allSettled(
      Array.from(
        { length: 4 },
        () => fetch(`${url}/slow`, { signal: AbortSignal.timeout(1000) }).then((r) => r.text()),
      ),
    );
    assert.ok(gaveUp.every((r) => r.status === "rejected"), "the clients were meant to give up");
    // Within a moment no backend is left idle in transaction or still sleeping…
    const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 1500);
    assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
    // …and the next request gets its whole body.
    const body = await (await fetch(`${url}/answer`, { signal: AbortSignal.timeout(3000) })).text();
    assert.equal(body, "answer\n42\n");
  } finally {
    await server.stop();
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test("an abort that lands while BEGIN is under way never returns the connection inside the transaction", async () => {
  const controller = new AbortController();
  // postgres.js calls `debug` as it sends a statement: the abort arrives while BEGIN is in flight.
  const { sql } = connect({
    max: 1,
    debug: (_: unknown, query: string) => {
      if (/^begin/.test(query)) controller.abort(new Error("gave up during BEGIN"));
    },
  });
  try {
    await assert.rejects(async () => {
      for await (const _ of streamRows(sql, "select 1", { signal: controller.signal })) {
        /* none */
      }
    }, /gave up during BEGIN/);
    const [row] = await sql`show transaction_read_only`;
    assert.equal(row!.transaction_read_only, "off");
  } finally {
    await endPool(sql).catch(() => {});
  }
});
