// streamQuery() in-process through app.request(): negotiation, headers, problem+json, formats.
// Real PostgreSQL; socket-level behaviour (disconnects, aborts) is in server_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { streamQuery } from "../../lib/hono/mod.ts";
import { parseAccept } from "../../lib/hono/_negotiate.ts";
import {
  busySessions,
  connect,
  DATABASE_URL,
  endPool,
  sessions,
  uniqueName,
  waitFor,
} from "../_db.ts";
import type { Sql } from "../_db.ts";
import { createTestApp } from "./_servers/app.ts";

function testApp() {
  const app = uniqueName("sluice_hono_inproc");
  const made = createTestApp({
    databaseUrl: DATABASE_URL,
    app,
    poolMax: 4,
    idleTimeoutMs: 10_000,
    limitMax: 2,
  });
  return { ...made, name: app };
}

async function assertClean(sql: Sql, app: string, admin: Sql): Promise<void> {
  const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 2000);
  assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
  await endPool(sql);
}

const PROBLEM = "application/problem+json; charset=utf-8";

test("streamQuery() picks the format from options, ?format= and Accept, else 406", async () => {
  const { app, sql, name } = testApp();
  const admin = connect().sql;
  try {
    const cases: [string, Record<string, string>, number, string | undefined][] = [
      ["/rows?n=3", {}, 200, "application/x-ndjson; charset=utf-8"],
      ["/rows?n=3", { accept: "*/*" }, 200, "application/x-ndjson; charset=utf-8"],
      ["/rows?n=3", { accept: "application/jsonl" }, 200, "application/jsonl; charset=utf-8"],
      ["/rows?n=3", { accept: "text/csv" }, 200, "text/csv; charset=utf-8; header=present"],
      ["/rows?n=3", { accept: "text/*" }, 200, "text/csv; charset=utf-8; header=present"],
      ["/rows?n=3", { accept: "application/json" }, 200, "application/json; charset=utf-8"],
      ["/rows?n=3", { accept: "text/event-stream" }, 200, "text/event-stream; charset=utf-8"],
      [
        "/rows?n=3",
        { accept: "text/html, text/csv;q=0.5, application/json;q=0.9" },
        200,
        "application/json; charset=utf-8",
      ],
      [
        "/rows?n=3",
        { accept: "*/*, application/x-ndjson;q=0, application/jsonl;q=0" },
        200,
        "application/json; charset=utf-8",
      ],
      [
        "/rows?n=3&format=csv",
        { accept: "application/json" },
        200,
        "text/csv; charset=utf-8; header=present",
      ],
      ["/rows?n=3&fixed=sse&format=csv", {}, 200, "text/event-stream; charset=utf-8"],
      ["/rows?n=3", { accept: "text/html" }, 406, PROBLEM],
      ["/rows?n=3", { accept: "application/xml, text/csv;q=0" }, 406, PROBLEM],
      ["/rows?n=3&format=xml", {}, 406, PROBLEM],
    ];
    for (const [path, headers, status, type] of cases) {
      const res = await app.request(path, { headers });
      await res.arrayBuffer();
      assert.equal(res.status, status, `${path} ${JSON.stringify(headers)}`);
      assert.equal(res.headers.get("content-type"), type, `${path} ${JSON.stringify(headers)}`);
    }
    const vary = await app.request("/rows?n=1");
    await vary.arrayBuffer();
    assert.equal(vary.headers.get("vary"), "Accept");
    const fixed = await app.request("/rows?n=1&fixed=ndjson");
    await fixed.arrayBuffer();
    assert.equal(fixed.headers.get("vary"), null, "a fixed format does not vary on Accept");
    await assertClean(sql, name, admin);
  } finally {
    await endPool(admin);
  }
});

test("parseAccept() reads media ranges and q values, ignoring bad ones", () => {
  assert.deepEqual(parseAccept("Text/CSV;q=0.5 , application/json; charset=utf-8, ,*/*;q=x"), [
    { type: "text/csv", q: 0.5 },
    { type: "application/json", q: 1 },
    { type: "*/*", q: 1 },
  ]);
});

test("streamQuery() sends streaming headers and each format's body", async () => {
  const { app, sql, name } = testApp();
  const admin = connect().sql;
  try {
    const res = await app.request(
      "/rows?n=3&format=ndjson&filename=r%C3%A9sum%C3%A9%20%222%22.ndjson",
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(
      res.headers.get("content-disposition"),
      `attachment; filename="r_sum_ _2_.ndjson"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%222%22.ndjson`,
    );
    assert.equal(
      await res.text(),
      '{"id":1,"pad":""}\n{"id":2,"pad":""}\n{"id":3,"pad":""}\n',
    );
    const noName = await app.request("/rows?n=1");
    await noName.arrayBuffer();
    assert.equal(noName.headers.get("content-disposition"), null);
    assert.equal(
      await (await app.request("/rows?n=2&pad=1&format=csv")).text(),
      "id,pad\n1,x\n2,x\n",
    );
    assert.deepEqual(await (await app.request("/rows?n=2&format=json")).json(), [
      { id: 1, pad: "" },
      { id: 2, pad: "" },
    ]);
    assert.deepEqual(await (await app.request("/rows?n=0&format=json")).json(), []);
    assert.equal(await (await app.request("/rows?n=0&format=ndjson")).text(), "");
    const sse = await (await app.request("/rows?n=2&format=sse")).text();
    assert.match(
      sse,
      /^event: rows\ndata: \[\{"id":1,"pad":""\},\ndata: \{"id":2,"pad":""\}\]\n\n/,
    );
    assert.match(sse, /event: end\ndata: \{"rows":2\}\n\n$/);
    await assertClean(sql, name, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamQuery() turns errors before the first byte into problem+json without SQL", async () => {
  const { app, sql, name } = testApp();
  const admin = connect().sql;
  try {
    const cases: [string, number, string, string | null][] = [
      ["/bad-sql", 400, "42P01", null],
      ["/bad-param?x=abc", 400, "22P02", null],
      ["/timeout", 504, "57014", null],
      ["/secret?d=0", 400, "22012", null],
    ];
    for (const [path, status, code, retryAfter] of cases) {
      const res = await app.request(path);
      const text = await res.text();
      assert.equal(res.status, status, `${path}: ${text}`);
      assert.equal(res.headers.get("content-type"), PROBLEM);
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(res.headers.get("retry-after"), retryAfter);
      const body = JSON.parse(text);
      assert.equal(body.status, status);
      assert.equal(body.code, code);
      assert.equal(body.type, "about:blank");
      assert.equal(typeof body.title, "string");
      assert.equal(typeof body.detail, "string");
      for (
        const secret of [
          "sluice_no_such_table",
          "abc",
          "pg_sleep",
          "hunter2",
          "password",
          "postgres://",
          "select",
        ]
      ) {
        assert.ok(!text.includes(secret), `${path}: the problem leaks "${secret}": ${text}`);
      }
    }
    await assertClean(sql, name, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamQuery() answers HEAD with the headers and never opens a cursor", async () => {
  const { app, sql, name } = testApp();
  const admin = connect().sql;
  try {
    for (let i = 0; i < 5; i++) {
      const res = await app.request("/rows?n=1000&format=csv", { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/csv; charset=utf-8; header=present");
      assert.equal(await res.text(), "");
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await sessions(admin, name), [], "HEAD opened a database connection");
    await endPool(sql);
  } finally {
    await endPool(admin);
  }
});

test("streamQuery() answers bad options with a problem+json 500 and hands the TypeError to onError", async () => {
  const sql = connect().sql;
  try {
    const app = new Hono();
    const errors: unknown[] = [];
    const onError = (e: unknown) => void errors.push(e);
    // deno-lint-ignore no-explicit-any
    app.get("/f", (c) => streamQuery(c, sql, "select 1", { format: "xml" as any, onError }));
    app.get("/n", (c) => streamQuery(c, sql, "select 1", { filename: "", onError }));
    for (const path of ["/f", "/n"]) {
      const res = await app.request(path);
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("content-type"), PROBLEM);
    }
    assert.ok(errors[0] instanceof TypeError);
    assert.match(String(errors[0]), /Cannot use format as a stream format .*current value is xml/);
    assert.ok(errors[1] instanceof TypeError);
  } finally {
    await endPool(sql);
  }
});
