// The byte formats read parameterless queries through `COPY … TO STDOUT`: every exit path must
// leave the connection usable (postgres.js pauses its socket under backpressure), free it, and
// surface the error — through real slow readers, stalled readers, cancels and killed backends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { CopyReader } from "../../lib/sources/_copy_reader.ts";
import { SluiceError, streamCsv, streamNdjson } from "../../mod.ts";
import {
  assertPoolRecovers,
  busySessions,
  connect,
  endPool,
  isConnectionLoss,
  sessions,
  waitFor,
} from "../_db.ts";
import type { Sql } from "../_db.ts";
import { assertClean, collect, utf8 } from "../formats/_oracle.ts";

const ROWS = 200_000;
const QUERY = `select g, repeat('x', 100) as pad from generate_series(1, ${ROWS}) g`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pool (of one) still answers, within two seconds. */
async function assertAnswers(sql: Sql): Promise<void> {
  const answer = sql`select 1 as one`.then((r) => r[0]!.one);
  const late = sleep(2000).then(() => "no answer in 2 s");
  assert.equal(await Promise.race([answer, late]), 1);
}

for (const [name, stream] of [["streamCsv", streamCsv], ["streamNdjson", streamNdjson]] as const) {
  test(`${name}() through COPY: a slow reader gets every row, then the connection answers again`, {
    timeout: 60_000,
  }, async () => {
    const admin = connect().sql;
    const { sql, app } = connect({ max: 1 });
    try {
      let lines = 0;
      let chunks = 0;
      for await (const chunk of stream(sql, QUERY)) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        // Pauses let the socket fill so postgres.js pauses it, the case that used to wedge.
        if (++chunks % 20 === 0) await sleep(5);
      }
      assert.equal(lines, ROWS + (name === "streamCsv" ? 1 : 0));
      await assertAnswers(sql);
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await endPool(admin);
    }
  });

  test(`${name}() through COPY: cancel mid-stream frees the connection for its next user`, async () => {
    const admin = connect().sql;
    const { sql, app } = connect({ max: 1 });
    try {
      const reader = stream(sql, QUERY).getReader();
      assert.ok((await reader.read()).value);
      await sleep(100); // the server fills the socket buffers meanwhile
      await reader.cancel();
      assert.deepEqual(await busySessions(admin, app), []);
      await assertAnswers(sql);
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await endPool(admin);
    }
  });
}

test("streamNdjson() through COPY: a stalled reader is released by the idle timeout", async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 1 });
  try {
    const reader = streamNdjson(sql, QUERY, { idleTimeoutMs: 500 }).getReader();
    assert.ok((await reader.read()).value);
    const stalled = performance.now();
    const freed = await waitFor(async () => (await busySessions(admin, app)).length === 0, 3000);
    const ms = performance.now() - stalled;
    assert.ok(freed, "the COPY's session stayed busy");
    assert.ok(ms < 1500, `freed after ${ms.toFixed(0)} ms (idle timeout 500 ms)`);
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, (e) => e instanceof SluiceError && e.code === "IDLE_TIMEOUT");
    await assertAnswers(sql);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test("streamCsv() through COPY: an abort while a read waits on the server ends it at once", async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 1 });
  try {
    const controller = new AbortController();
    const reader = streamCsv(
      sql,
      // The server sends COPY rows in 8 KiB blocks: 2,000 rows go out before the 5 s sleep.
      "select g, repeat('x', 100), pg_sleep(case when g = 2000 then 5 else 0 end) from generate_series(1, 4000) g",
      { signal: controller.signal, firstBatchRows: 10 },
    ).getReader();
    assert.ok((await reader.read()).value);
    setTimeout(() => controller.abort(new Error("client went away")), 300);
    const started = performance.now();
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, /client went away/);
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `the read waited ${ms.toFixed(0)} ms for a 5 s sleep`);
    assert.deepEqual(await busySessions(admin, app), []);
    await assertAnswers(sql);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test("streamNdjson() through COPY: statement timeout and query errors reach the reader", async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 1 });
  try {
    const slow = "select g, pg_sleep(0.001) from generate_series(1, 100000) g";
    await assert.rejects(async () => {
      for await (const _ of streamNdjson(sql, slow, { statementTimeoutMs: 200 })) { /* read */ }
    }, (e: { code?: string }) => e.code === "57014");
    await assert.rejects(async () => {
      for await (const _ of streamNdjson(sql, "select 1 / (g - 3) from generate_series(1, 5) g")) {
        /* read */
      }
    }, (e: { code?: string }) => e.code === "22012");
    await assertAnswers(sql);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test("streamCsv() through COPY: a backend killed mid-stream errors the stream; the pool recovers", async () => {
  const admin = connect().sql;
  const { sql, app } = connect({ max: 1 });
  try {
    const reader = streamCsv(sql, QUERY).getReader();
    assert.ok((await reader.read()).value);
    const [s] = await sessions(admin, app);
    assert.ok(s, "the stream's session should exist");
    await admin`select pg_terminate_backend(${s!.pid})`;
    await assert.rejects(
      async () => {
        for (;;) if ((await reader.read()).done) break;
      },
      isConnectionLoss,
    );
    await assertPoolRecovers(sql);
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await endPool(admin);
  }
});

test(
  "streamNdjson() through COPY reads wide rows one at a time from the first (no round trip to save); a cursor reads ten",
  {
    timeout: 30_000,
  },
  async () => {
    const admin = connect().sql;
    const { sql, app } = connect({ max: 1 });
    try {
      const wide = "select g, repeat('x', 200000) as body from generate_series(1, 40) g";
      const sizes = async (copy: boolean) => {
        const rows: number[] = [];
        for await (
          const _ of streamNdjson(sql, wide, {
            copy,
            onBatch: (b) => void rows.push(b.rows),
          })
        ) {
          /* read */
        }
        assert.equal(rows.reduce((a, b) => a + b, 0), 40);
        return rows.slice(0, -1); // the last batch is what is left
      };
      const viaCopy = await sizes(true);
      assert.ok(viaCopy.length > 0 && viaCopy.every((n) => n <= 2), `COPY batches: ${viaCopy}`);
      assert.equal(viaCopy[0], 1, "through COPY the first row goes out alone");
      const viaCursor = await sizes(false);
      assert.equal(viaCursor[0], 10, "a cursor's first fetch is firstBatchRows");
      assert.ok(viaCursor.every((n) => n >= 10), `cursor batches: ${viaCursor}`);
      await assertClean(sql, app, admin);
    } finally {
      await endPool(sql).catch(() => {});
      await endPool(admin);
    }
  },
);

test(
  "streamCsv() and streamNdjson() through COPY work behind PgBouncer in transaction mode (prepare: false)",
  {
    timeout: 60_000,
  },
  async () => {
    const { startPgBouncer } = await import("../_pgbouncer.ts");
    const postgres = (await import("postgres")).default;
    const bouncer = await startPgBouncer({ poolSize: 2 });
    const statements: string[] = [];
    const pooled = postgres(bouncer.url, {
      prepare: false,
      max: 4,
      onnotice: () => {},
      debug: (_c: unknown, q: string) => void statements.push(q),
    });
    const direct = connect().sql;
    try {
      const q = "select g, md5(g::text) as h, now() - g * interval '1 hour' as t " +
        "from generate_series(1, 20000) g order by g";
      // Four streams on two server connections: each COPY holds one for its transaction.
      const outputs = await Promise.all(
        [streamCsv, streamNdjson, streamCsv, streamNdjson].map(async (stream) =>
          utf8((await collect(stream(pooled, q))).bytes)
        ),
      );
      assert.ok(statements.some((s) => /^copy \(/i.test(s)), "the streams went through COPY");
      const csv = utf8((await collect(streamCsv(direct, q, { copy: false }))).bytes);
      const ndjson = utf8((await collect(streamNdjson(direct, q, { copy: false }))).bytes);
      // now() differs between transactions: compare everything but the timestamps' text.
      const strip = (s: string) => s.replace(/\d{4}-\d\d-\d\d[ T][0-9:.+-]+/g, "T");
      assert.equal(strip(outputs[0]!), strip(csv));
      assert.equal(strip(outputs[2]!), strip(csv));
      assert.equal(strip(outputs[1]!), strip(ndjson));
      assert.equal(strip(outputs[3]!), strip(ndjson));
      assert.equal(outputs[1]!.split("\n").length, 20001);
    } finally {
      await endPool(pooled).catch(() => {});
      await endPool(direct).catch(() => {});
      await bouncer.stop();
    }
  },
);

test("CopyReader in lines mode gives exact rows, one per CopyData message or split across chunks", async () => {
  const text = "1\ta\n22\tbb\n333\t\\N\n4444\tdd\n";
  const expected = ["1\ta", "22\tbb", "333\t\\N", "4444\tdd"];
  const bytes = new TextEncoder().encode(text);
  // One row a chunk (what PostgreSQL sends: "always one per row"), then chunkings a proxy could
  // make: rows split mid-line, several rows in a chunk that ends inside a row, a chunk that starts
  // inside a row and ends with several whole ones.
  const splits = [[4, 10, 17], [6], [1], [3, 7], [2, 4, 13, 20], [13, 20, 21]];
  for (const cuts of splits) {
    const readable = new Readable({ read() {} });
    const rows: string[] = [];
    const reader = new CopyReader(readable, "lines", (b, start, end) => {
      rows.push(new TextDecoder().decode(b.subarray(start, end)));
    });
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      readable.push(Buffer.from(bytes.subarray(from, cut)));
      from = cut;
    }
    readable.push(null);
    const batch = await reader.read(100);
    assert.deepEqual(rows, expected, `cuts ${cuts}`);
    assert.equal(batch.count, 4);
    assert.equal(batch.bytes, bytes.length);
  }
});

for (const [name, stream] of [["streamCsv", streamCsv], ["streamNdjson", streamNdjson]] as const) {
  test(
    `${name}() through COPY hands out whole 64 KiB chunks after the first reads (no small chunk per batch), the same bytes as a cursor`,
    {
      timeout: 60_000,
    },
    async () => {
      const admin = connect().sql;
      const { sql, app } = connect();
      try {
        const q =
          "select g, md5(g::text) as h, g % 7 = 0 as seventh from generate_series(1, 60000) g";
        const batches: number[] = [];
        const viaCopy = await collect(
          stream(sql, q, { onBatch: (b) => void batches.push(b.rows) }),
        );
        // The ramp of the first reads (the third one may already end at a full chunk).
        assert.deepEqual(batches.slice(0, 2), [1, 32]);
        assert.ok(batches[2]! > 900 && batches[2]! <= 1024, `batches: ${batches.slice(0, 4)}`);
        const sizes = viaCopy.chunks.map((c) => c.length);
        const middle = sizes.slice(3, -1);
        assert.ok(middle.length > 20, `chunks: ${sizes.length}`);
        // Whole chunks (NDJSON leaves a chunk's end unused when a line's worst case does not fit).
        const whole = (n: number) => n <= 65536 && n > 65536 - 1024;
        assert.deepEqual(
          middle.filter((n) => !whole(n)),
          [],
          "every chunk but the first and last",
        );
        const viaCursor = await collect(stream(sql, q, { copy: false }));
        assert.deepEqual(viaCopy.bytes, viaCursor.bytes);
        // A chosen byte target still sizes the batches (e.g. for larger SSE events).
        const chosen: number[] = [];
        await collect(
          stream(sql, q, {
            targetBatchBytes: 256 * 1024,
            onBatch: (b) => void chosen.push(b.bytes),
          }),
        );
        assert.ok(chosen.slice(4, -1).every((b) => b > 200 * 1024), `batches: ${chosen}`);
        await assertClean(sql, app, admin);
      } finally {
        await endPool(sql).catch(() => {});
        await endPool(admin);
      }
    },
  );
}
