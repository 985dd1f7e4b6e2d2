// A few hundred streams of every kind on a small pool, each ended by a random cause (consumer
// cancel before or after the first row, abort, idle timeout, query error, a killed backend, an
// HTTP client that closes its socket, a stalled or failing ingest). Afterwards: the process is up,
// no session is left in a transaction, the pool serves a new stream within a second, and memory
// has settled. The seed is printed; SLUICE_CHAOS_SEED=… replays a run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import process from "node:process";
import { Hono } from "hono";
import {
  ingest,
  streamBatches,
  streamCsv,
  streamJsonArray,
  streamNdjson,
  streamRows,
  streamSse,
} from "../mod.ts";
import { streamQuery } from "../lib/hono/mod.ts";
import { busySessions, connect, endPool, uniqueName, waitFor } from "./_db.ts";
import { serve } from "./hono/_servers/listen.ts";

const OPERATIONS = 240;
const CONCURRENCY = 3;

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const READS = [
  "rows",
  "batches",
  "csv",
  "ndjson",
  "json",
  "sse",
  "keyset",
  "include",
] as const;
const ENDINGS = [
  "complete",
  "cancelBefore",
  "cancelAfter",
  "abortBefore",
  "abortAfter",
  "idle",
  "queryError",
  "kill",
] as const;

type Read = typeof READS[number];
type Ending = typeof ENDINGS[number];

function gc(): void {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (typeof g.gc === "function") g.gc();
  else g.Bun?.gc(true);
}

test("chaos: random streams ended by random causes leave no session busy and the pool healthy", {
  timeout: 90_000,
}, async () => {
  const seed = Number(process.env.SLUICE_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`chaos seed ${seed}`);
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const admin = connect().sql;
  const { sql, app } = connect({ max: 3 });
  const parents = uniqueName("chaos_parent");
  const kids = uniqueName("chaos_kid");
  const target = uniqueName("chaos_in");
  await admin.unsafe(`create table ${parents} as
    select g as id, repeat('p', 50) as pad from generate_series(1, 5000) g;
    alter table ${parents} add primary key (id);
    create table ${kids} as select g as id, (g % 5000) + 1 as parent from generate_series(1, 10000) g;
    create table ${target} (id int, v text)`);

  const hono = new Hono();
  hono.get("/export", (c) => {
    const n = Number(c.req.query("n"));
    return streamQuery(
      c,
      sql,
      `select g as id, pg_backend_pid() as pid, repeat('x', 200) as pad from generate_series(1, ${n}) g`,
      { format: c.req.query("format") as "csv", copy: c.req.query("copy") === "1" },
    );
  });
  const server = await serve(hono.fetch);

  const kill = (pid: number) => admin`select pg_terminate_backend(${pid})`;
  const outcomes = new Map<string, number>();
  const tally = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

  async function readOnce(kind: Read, ending: Ending): Promise<string> {
    const n = 1 + Math.floor(rand() * 3000);
    const errorAt = ending === "queryError" ? 1 + Math.floor(rand() * n) : 0;
    const sleep = ending.endsWith("Before") && rand() < 0.7 ? 0.2 : 0;
    const from = kind === "keyset" || kind === "include"
      ? `(select * from ${parents} where id <= ${n}) p`
      : `generate_series(1, ${n}) g`;
    const id = kind === "keyset" || kind === "include" ? "p.id" : "g";
    const value = errorAt ? `1 / (${id} - ${errorAt})` : id;
    const text = `select ${value} as id, pg_backend_pid() as pid, repeat('x', ${
      Math.floor(rand() * 400)
    }) as pad from ${from}${sleep ? `, pg_sleep(${sleep})` : ""}`;
    const controller = new AbortController();
    const options = {
      signal: controller.signal,
      copy: rand() < 0.5,
      ...(ending === "idle" ? { idleTimeoutMs: 100 } : {}),
      ...(kind === "keyset" ? { key: "id", targetBatchBytes: 20_000 } : {}),
      ...(kind === "include"
        ? {
          include: {
            kids: {
              key: "id",
              childKey: "parent",
              many: (ids: number[]) => sql`select * from ${sql(kids)} where parent = any(${ids})`,
            },
          },
        }
        : {}),
    };
    // deno-lint-ignore no-explicit-any
    const open: Record<Read, () => ReadableStream<any>> = {
      rows: () => streamRows(sql, text, options),
      batches: () => streamBatches(sql, text, options),
      csv: () => streamCsv(sql, text, options),
      ndjson: () => streamNdjson(sql, text, options),
      json: () => streamJsonArray(sql, text, options),
      sse: () => streamSse(sql, text, options),
      keyset: () => streamRows(sql, text, options),
      include: () => streamNdjson(sql, text, options),
    };
    const reader = open[kind]().getReader();
    const pidOf = (value: unknown): number | undefined => {
      if (value instanceof Uint8Array) {
        const s = new TextDecoder().decode(value);
        const m = s.match(/"pid":(\d+)/) ?? s.match(/\n-?\d+,(\d+),/);
        return m ? Number(m[1]) : undefined;
      }
      const row = Array.isArray(value) ? value[0] : value;
      return (row as { pid?: number } | undefined)?.pid;
    };
    try {
      if (ending === "cancelBefore" || ending === "abortBefore") {
        const first = reader.read().catch(() => {});
        await new Promise((r) => setTimeout(r, rand() * 100));
        if (ending === "cancelBefore") await reader.cancel();
        else controller.abort(new Error("chaos abort"));
        await first;
        return ending;
      }
      const first = await reader.read();
      if (first.done) return "empty";
      if (ending === "cancelAfter") return await reader.cancel(), ending;
      if (ending === "abortAfter") controller.abort(new Error("chaos abort"));
      if (ending === "idle") await new Promise((r) => setTimeout(r, 300));
      if (ending === "kill") {
        const pid = pidOf(first.value);
        if (pid !== undefined) await kill(pid);
      }
      for (;;) if ((await reader.read()).done) return "completed";
    } catch (e) {
      return `error ${(e as { code?: string }).code ?? (e as Error).message}`;
    }
  }

  async function httpOnce(): Promise<string> {
    const format = pick(["csv", "ndjson", "json", "sse"]);
    const n = 1 + Math.floor(rand() * 20_000);
    const socket = netConnect({ host: "127.0.0.1", port: server.port });
    const closed = new Promise((r) => socket.on("close", r));
    socket.on("error", () => {});
    let received = 0;
    const enough = 1 + Math.floor(rand() * 200_000);
    const got = new Promise<void>((resolve) => {
      socket.on("data", (d: Uint8Array) => {
        received += d.length;
        if (received >= enough) resolve();
      });
      socket.on("close", () => resolve());
    });
    socket.write(
      `GET /export?format=${format}&n=${n}&copy=${
        rand() < 0.5 ? 1 : 0
      } HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    if (rand() < 0.3) await new Promise((r) => setTimeout(r, rand() * 30));
    // The client stops waiting after a while either way: whether the server freed what the
    // request held is what the end of the test checks.
    else await Promise.race([got, new Promise((r) => setTimeout(r, 10_000))]);
    socket.destroy();
    await closed;
    return "http closed";
  }

  async function ingestOnce(): Promise<string> {
    const ending = pick(["complete", "abort", "bodyError", "killStalled"] as const);
    const controller = new AbortController();
    let pull = 0;
    let stall: (() => void) | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (pull++ === 3) {
          if (ending === "bodyError") return c.error(new Error("chaos body"));
          if (ending === "abort") return controller.abort(new Error("chaos abort"));
          if (ending === "killStalled") {
            await new Promise<void>((r) => stall = r);
            return c.error(new Error("client gone"));
          }
        }
        if (pull > 10) return c.close();
        c.enqueue(new TextEncoder().encode(`{"id":${pull},"v":"x"}\n`.repeat(50)));
      },
    });
    // Settled into an outcome at once: the ingest may fail while the test still stalls its body.
    const run = ingest(sql, target, body, { format: "ndjson", signal: controller.signal }).then(
      () => "ingest completed",
      (e) => `ingest error ${(e as { code?: string }).code ?? (e as Error).message}`,
    );
    if (ending === "killStalled") {
      const pidSeen = await waitFor(() => Promise.resolve(stall !== undefined), 3000);
      if (pidSeen) {
        await admin`select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = ${app} and query ilike 'copy%${admin.unsafe(target)}%'`
          .catch(() => {});
        controller.abort(new Error("client gone"));
        stall?.();
      }
    }
    return await run;
  }

  async function operation(i: number): Promise<void> {
    const r = rand();
    const what = r < 0.12 ? "http" : r < 0.22 ? "ingest" : `${pick(READS)}/${pick(ENDINGS)}`;
    // Names an operation that hangs, for the report (the test's own timeout fails it).
    const watchdog = setTimeout(
      () => console.log(`chaos: operation ${i} (${what}) still running after 20 s`),
      20_000,
    );
    try {
      const outcome = what === "http"
        ? await httpOnce()
        : what === "ingest"
        ? await ingestOnce()
        : `${what}: ${await readOnce(...(what.split("/") as [Read, Ending]))}`;
      tally(outcome);
    } finally {
      clearTimeout(watchdog);
    }
  }

  let rssAfterFirstHalf = 0;
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < OPERATIONS) {
        const i = next++;
        await operation(i);
        if (i === OPERATIONS / 2) {
          gc();
          rssAfterFirstHalf = process.memoryUsage().rss;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 3000);
    assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
    const started = performance.now();
    let rows = 0;
    for await (const _ of streamRows(sql, "select 1")) rows++;
    assert.equal(rows, 1);
    const took = performance.now() - started;
    assert.ok(took < 1000, `a new stream took ${Math.round(took)} ms`);
    gc();
    const grown = process.memoryUsage().rss - rssAfterFirstHalf;
    console.log(
      `chaos: ${OPERATIONS} operations, RSS grew ${
        (grown / 2 ** 20).toFixed(1)
      } MiB in the second half`,
    );
    assert.ok(grown < 64 * 2 ** 20, `RSS kept growing: +${(grown / 2 ** 20).toFixed(1)} MiB`);
    if (process.env.SLUICE_CHAOS_VERBOSE) console.log(outcomes);
    // Every kind of ending happened (the run exercised what it claims to).
    const seen = [...outcomes.keys()].join("\n");
    for (const needle of ["kill: error", "idle: error IDLE_TIMEOUT", "queryError: error 22012"]) {
      assert.ok(seen.includes(needle), `no "${needle}" outcome in this run:\n${seen}`);
    }
  } finally {
    await server.stop();
    await endPool(sql).catch(() => {});
    await admin.unsafe(`drop table if exists ${parents}, ${kids}, ${target}`);
    await endPool(admin);
  }
});
