// streamQuery() serving Arrow, in-process through app.request(): only when given streamArrow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { streamQuery } from "../../lib/hono/mod.ts";
import { streamArrow } from "../../lib/arrow/mod.ts";
import { connect, endPool } from "../_db.ts";
import { readWithArrowJs } from "../arrow/_readers.ts";

const ARROW = "application/vnd.apache.arrow.stream";

test("streamQuery() serves Arrow by format, ?format=arrow and Accept once given streamArrow", async () => {
  const { sql } = connect();
  try {
    const query = "select g::int8 as id, 'é' || g as label from generate_series(1, 1000) g";
    const app = new Hono();
    app.get("/with", (c) => streamQuery(c, sql, query, { arrow: streamArrow }));
    app.get("/fixed", (c) => streamQuery(c, sql, query, { arrow: streamArrow, format: "arrow" }));
    app.get("/without", (c) => streamQuery(c, sql, query));
    for (
      const [path, headers] of [
        ["/with", { accept: ARROW }],
        ["/with?format=arrow", {}],
        ["/fixed", {}],
      ] as const
    ) {
      const res = await app.request(path, { headers });
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("content-type"), ARROW, path);
      const back = readWithArrowJs(new Uint8Array(await res.arrayBuffer()));
      assert.equal(back.rows, 1000, path);
      assert.deepEqual(back.column("label", "string").slice(0, 2), ["é1", "é2"]);
    }
    // A wildcard still prefers NDJSON; Arrow is never offered without the encoder.
    const wild = await app.request("/with", { headers: { accept: "*/*" } });
    assert.equal(wild.headers.get("content-type"), "application/x-ndjson; charset=utf-8");
    await wild.body?.cancel();
    const refused = await app.request("/without", { headers: { accept: ARROW } });
    assert.equal(refused.status, 406);
    assert.ok(!(await refused.text()).includes("arrow"));
    assert.equal((await app.request("/without?format=arrow")).status, 406);
  } finally {
    await endPool(sql);
  }
});

test("streamQuery() answers format: arrow without the arrow option, and a non-function arrow, with a 500 problem", async () => {
  const { sql } = connect();
  try {
    const app = new Hono();
    const caught: unknown[] = [];
    const onError = (error: unknown) => void caught.push(error);
    app.get("/a", (c) => streamQuery(c, sql, "select 1", { format: "arrow", onError }));
    // deno-lint-ignore no-explicit-any
    app.get("/b", (c) => streamQuery(c, sql, "select 1", { arrow: "yes" as any, onError }));
    assert.equal((await app.request("/a")).status, 500);
    assert.equal((await app.request("/b")).status, 500);
    assert.equal(caught.length, 2);
    assert.ok(caught.every((e) => e instanceof TypeError));
  } finally {
    await endPool(sql);
  }
});
