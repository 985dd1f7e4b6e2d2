// Errors a server operator must see: misconfigured endpoints answer with a problem+json 500 (not
// Hono's plain-text 500), and the real error reaches `onError` (or the console) on every path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { paginate, streamQuery } from "../../lib/hono/mod.ts";
import type { PaginateOptions, StreamQueryOptions } from "../../lib/hono/mod.ts";
import { connect, endPool } from "../_db.ts";

const PROBLEM = "application/problem+json; charset=utf-8";

test("streamQuery() and paginate() answer a misconfiguration with a problem+json 500 and hand the error to onError", async () => {
  const { sql } = connect();
  const seen: unknown[] = [];
  const onError = (error: unknown) => void seen.push(error);
  const app = new Hono();
  app.get(
    "/bad-format",
    (c) =>
      streamQuery(c, sql, "select 1", { format: "xml", onError } as unknown as StreamQueryOptions),
  );
  app.get("/bad-option", (c) => streamQuery(c, sql, "select 1", { idleTimeoutMs: -5, onError }));
  app.get(
    "/no-key",
    (c) => paginate(c, sql, "select 1 as id", { onError } as unknown as PaginateOptions),
  );
  try {
    for (const path of ["/bad-format", "/bad-option", "/no-key"]) {
      const res = await app.request(path);
      assert.equal(res.status, 500, path);
      assert.equal(res.headers.get("content-type"), PROBLEM, path);
      const body = await res.json();
      assert.match(body.title, /misconfigured/, path);
      assert.equal(body.status, 500);
    }
    assert.equal(seen.length, 3);
    assert.match(String(seen[0]), /format/);
    assert.ok(seen[1] instanceof RangeError);
    assert.match(String(seen[2]), /key/);
  } finally {
    await endPool(sql);
  }
});

test("streamQuery() hands a query error before the first byte and one after it to onError", async () => {
  const { sql } = connect();
  const seen: { code?: string }[] = [];
  const onError = (error: unknown) => void seen.push(error as { code?: string });
  const app = new Hono();
  app.get(
    "/no-table",
    (c) => streamQuery(c, sql, "select * from sluice_no_such_table", { onError }),
  );
  app.get(
    "/late",
    (c) =>
      streamQuery(c, sql, "select 1 / (g - 50000) as x from generate_series(1, 100000) g", {
        onError,
        format: "ndjson",
      }),
  );
  try {
    const early = await app.request("/no-table");
    assert.equal(early.status, 400);
    const body = await early.text();
    assert.doesNotMatch(body, /sluice_no_such_table/, "the client never sees SQL");
    assert.equal(seen[0]?.code, "42P01");

    const late = await app.request("/late");
    assert.equal(late.status, 200);
    await assert.rejects(late.text());
    assert.equal(seen[1]?.code, "22012");
    assert.equal(seen.length, 2);
  } finally {
    await endPool(sql);
  }
});

test("without onError, a 5xx before the first byte is logged with console.error", async () => {
  const { sql } = connect();
  const app = new Hono();
  app.get("/bad", (c) => streamQuery(c, sql, "select 1", { idleTimeoutMs: -5 }));
  app.get("/no-table", (c) => streamQuery(c, sql, "select * from sluice_no_such_table"));
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    assert.equal((await app.request("/bad")).status, 500);
    assert.equal((await app.request("/no-table")).status, 400);
  } finally {
    console.error = original;
    await endPool(sql);
  }
  // The 500 is logged with its real error; the client's own mistake (400) is not.
  assert.equal(logged.length, 1);
  assert.ok(logged[0]!.some((a) => a instanceof RangeError));
});
