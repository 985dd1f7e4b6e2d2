// Mistakes a newcomer makes, reported at call time in the user's words (no internal alias, no
// server syntax error, no crash inside sluice).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { streamCsv, streamNdjson, streamRows } from "../mod.ts";
import { paginate } from "../lib/hono/mod.ts";
import { connect, endPool } from "./_db.ts";

test("a statement that returns no rows is refused at call time, naming what streams accept", async () => {
  const { sql } = connect();
  try {
    for (
      const q of ["update t set x = 1", "  /* note */ (delete from t)", "insert into t values (1)"]
    ) {
      assert.throws(() => streamRows(sql, q), {
        name: "TypeError",
        message:
          /^Cannot stream (UPDATE|DELETE|INSERT) statements with streamRows\(\): a stream needs a query that returns rows \(SELECT, WITH, VALUES, TABLE\)/,
      });
    }
    assert.throws(() => streamNdjson(sql, sql`update t set x = ${1}`), /Cannot stream UPDATE/);
    // Queries that do return rows pass, comments and parentheses included.
    for (
      const q of [
        "-- a comment\nselect 1",
        "(select 1)",
        "values (1)",
        "with x as (select 1) select * from x",
      ]
    ) {
      let n = 0;
      for await (const _ of streamRows(sql, q)) n++;
      assert.equal(n, 1, q);
    }
  } finally {
    await endPool(sql);
  }
});

test("a query of no accepted kind and a database that is none fail at call time", () => {
  const { sql } = connect();
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => streamRows(sql, 42 as any),
    /^TypeError: Cannot use query as a SQL query: current value is 42/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamRows({} as any, "select 1"), {
    name: "TypeError",
    message:
      /^Cannot use sql as a postgres.js, PGlite or Bun SQL instance: current value is an object with no keys/,
  });
  void sql.end();
});

test("keyset: a key missing from the result names the key and the result's columns; an ORDER BY is refused", async () => {
  const { sql } = connect();
  try {
    await assert.rejects(async () => {
      for await (const _ of streamRows(sql, "select 1 as x, 2 as y", { key: "id" })) { /* none */ }
    }, (e) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /key \(id\).*no column of that name; its columns are x, y/);
      assert.doesNotMatch(e.message, /sluice_k/);
      return true;
    });
    assert.throws(
      () =>
        streamRows(sql, "select g as id from generate_series(1, 3) g order by g desc", {
          key: "id",
        }),
      /Cannot use a query with its own ORDER BY for keyset pages \(key id\)/,
    );
    // An ORDER BY inside a window, aggregate or subquery is the query's own business.
    let n = 0;
    const inner =
      "select id, row_number() over (order by id desc) as r from (select g as id from generate_series(1, 3) g order by g) s";
    for await (const _ of streamRows(sql, inner, { key: "id" })) n++;
    assert.equal(n, 3);
    const app = new Hono();
    let seen: unknown;
    app.get(
      "/",
      (c) =>
        paginate(c, sql, "select 1 as id order by 1", {
          key: "id",
          onError: (e) => void (seen = e),
        }),
    );
    assert.equal((await app.request("/")).status, 500);
    assert.match(String(seen), /ORDER BY/);
  } finally {
    await endPool(sql);
  }
});

test("CSV with include says why in the user's words", () => {
  const { sql } = connect();
  assert.throws(
    () =>
      streamCsv(sql, "select 1 as id", {
        include: { x: { key: "id", childKey: "id", many: () => sql`select 1 as id` } },
      }),
    /^TypeError: Cannot use include with streamCsv\(\): CSV rows are flat/,
  );
  void sql.end();
});
