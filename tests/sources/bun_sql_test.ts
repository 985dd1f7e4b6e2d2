import { test } from "node:test";
import assert from "node:assert/strict";
import { streamBatches } from "../../mod.ts";
import type { Database } from "../../lib/sources/open_source.ts";
import { copyCsv } from "../formats/_oracle.ts";
import { busySessions, connect, DATABASE_URL, endPool, sessions, uniqueName } from "../_db.ts";
import { sharedDriverTests, waitFor } from "./_shared.ts";
import type { DriverHarness } from "./_shared.ts";

// Bun's built-in client exists only on Bun; the module name is a variable so Deno's type check does
// not try to resolve it.
const isBun = typeof (globalThis as { Bun?: unknown }).Bun === "object";
const BUN = "bun";
// deno-lint-ignore no-explicit-any
const SQL: any = isBun ? (await import(BUN)).SQL : undefined;

/** A Bun `SQL` instance, as much as these tests use. */
interface BunSqlInstance {
  (template: TemplateStringsArray, ...values: unknown[]): Promise<Record<string, unknown>[]>;
  unsafe(text: string): Promise<Record<string, unknown>[]>;
  close(options?: { timeout?: number }): Promise<void>;
}

function bunHarness(): Promise<
  DriverHarness & { end(): Promise<void>; sql: BunSqlInstance; app: string }
> {
  const app = uniqueName("sluice_bun");
  const sql: BunSqlInstance = new SQL(DATABASE_URL, {
    max: 2,
    connection: { application_name: app },
  });
  const admin = connect().sql;
  return Promise.resolve({
    name: "Bun.sql",
    db: sql as unknown as Database,
    sql,
    app,
    bigRows: 1_000_000,
    rows: async (text) => [...await sql.unsafe(text)],
    // Its own pool: under Bun 1.4.5, a postgres.js connection that ran `COPY … TO STDOUT`
    // through `.readable()` sometimes never answers its next query.
    copyCsv: async (text) => {
      const copier = connect().sql;
      try {
        return new TextDecoder().decode(await copyCsv(copier, text));
      } finally {
        await copier.end({ timeout: 1 });
      }
    },
    sqlState: (e) => (e as { errno?: string }).errno,
    isClean: async () => (await busySessions(admin, app)).length === 0,
    isUntouched: async () => (await sessions(admin, app)).length === 0,
    end: async () => {
      await sql.close({ timeout: 2 });
      const gone = await waitFor(async () => (await sessions(admin, app)).length === 0, 3000);
      await endPool(admin);
      assert.ok(gone, "Bun's pool did not close its connections");
    },
  });
}

if (!isBun) {
  test(
    "Bun.sql: runs on Bun only",
    { skip: "Bun's SQL client is part of the Bun runtime" },
    () => {},
  );
} else {
  sharedDriverTests("Bun.sql", bunHarness);

  test("Bun.sql: abort interrupts a slow fetch and the connection is reused", async () => {
    const h = await bunHarness();
    try {
      const controller = new AbortController();
      const q =
        "select g, pg_sleep(case when g = 150 then 30 else 0 end) from generate_series(1, 200) g";
      const reader = streamBatches(h.db, q, { signal: controller.signal }).getReader();
      await reader.read();
      const started = Date.now();
      setTimeout(() => controller.abort(new Error("stop")), 100);
      await assert.rejects(reader.read());
      assert.ok(Date.now() - started < 5000, "the fetch was not interrupted");
      assert.ok(await waitFor(() => h.isClean(), 3000));
      assert.deepEqual([...await h.sql`select 1 as one`], [{ one: 1 }]);
    } finally {
      await h.end();
    }
  });

  test("Bun.sql: a connection killed mid-stream errors the stream and the pool recovers", async () => {
    const h = await bunHarness();
    const admin = connect().sql;
    try {
      const reader = streamBatches(h.db, "select g from generate_series(1, 1000000) g").getReader();
      await reader.read();
      // Only the stream's backend: Bun 1.4.5 hands an idle pooled connection whose backend was
      // killed to the next query, which then fails (postgres.js notices the closed socket).
      const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${h.app} and state = 'idle in transaction'`;
      assert.equal(killed.length, 1);
      await assert.rejects(
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })(),
      );
      assert.deepEqual([...await h.sql`select 2 as two`], [{ two: 2 }]);
    } finally {
      await endPool(admin);
      await h.end();
    }
  });
}
