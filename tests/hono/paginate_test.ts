import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Hono } from "hono";
import postgres from "postgres";
import { paginate, streamQuery } from "../../lib/hono/mod.ts";
import type { PaginateOptions } from "../../lib/hono/mod.ts";
import { decodeAfterToken, encodeAfterToken } from "../../lib/hono/_token.ts";
import { busySessions, connect, endPool, uniqueName, waitFor } from "../_db.ts";
import type { Sql } from "../_db.ts";
import { startPgBouncer } from "../_pgbouncer.ts";

function appFor(sql: Sql, query: string, options: PaginateOptions): Hono {
  const app = new Hono();
  app.get("/items", (c) => paginate(c, sql, query, options));
  return app;
}

interface Page {
  rows: Record<string, unknown>[];
  next: string | null;
}

test(
  "paginate() walks a table page by page through PgBouncer: every row once, in order, Link and next until the end",
  {
    timeout: 60_000,
  },
  async () => {
    const admin = connect().sql;
    const table = uniqueName("sluice_paginate");
    const bouncer = await startPgBouncer();
    const app = uniqueName("sluice_paginate_app");
    const sql = postgres(bouncer.url, {
      prepare: false,
      max: 2,
      onnotice: () => {},
      connection: { application_name: app },
    });
    try {
      await admin.unsafe(
        `create table ${table} (id int primary key, name text, at timestamptz, tags text[])`,
      );
      await admin.unsafe(`insert into ${table}
      select g, 'n' || g || '"é', '2024-01-01'::timestamptz + g * interval '1 hour', array['a', g::text]
      from generate_series(1, 237) g`);
      const server = appFor(sql, `select * from ${table}`, { key: "id", limit: 50, secret: "k" });
      const ids: number[] = [];
      const texts: string[] = [];
      let url = "http://x/items";
      let pages = 0;
      for (;;) {
        const res = await server.request(url);
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        const text = await res.text();
        const page = JSON.parse(text) as Page;
        pages++;
        for (const row of page.rows) ids.push(row.id as number);
        texts.push(...page.rows.map((r) => JSON.stringify(r)));
        const link = res.headers.get("link");
        if (page.next === null) {
          assert.equal(link, null);
          break;
        }
        assert.equal(page.rows.length, 50);
        const match = /^<(.+)>; rel="next"$/.exec(link ?? "");
        assert.ok(match, `Link header: ${link}`);
        // A reference relative to the page's URL.
        url = new URL(match[1]!, url).href;
        assert.equal(new URL(url).searchParams.get("after"), page.next);
      }
      assert.equal(pages, 5);
      assert.deepEqual(ids, [...Array(237).keys()].map((i) => i + 1));
      // Rows are PostgreSQL's own row_to_json.
      const expected = await admin.unsafe(
        `select row_to_json(t.*)::text as j from ${table} t order by id`,
      );
      assert.deepEqual(texts, expected.map((r) => JSON.stringify(JSON.parse(r.j))));
      const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 2000);
      assert.ok(clean, "no transaction may stay open");
    } finally {
      await endPool(sql).catch(() => {});
      await bouncer.stop();
      await admin.unsafe(`drop table if exists ${table}`);
      await endPool(admin);
    }
  },
);

test("paginate() clamps ?limit= to maxLimit, pages by a composite key in desc order", async () => {
  const { sql } = connect();
  try {
    const q = "select g % 3 as grp, g as id from generate_series(1, 40) g";
    const server = appFor(sql, q, { key: ["grp", "id"], direction: "desc", maxLimit: 7 });
    const seen: [number, number][] = [];
    let url = "http://x/items?limit=1000";
    for (;;) {
      const res = await server.request(url);
      const page = await res.json() as Page;
      assert.ok(page.rows.length <= 7);
      seen.push(...page.rows.map((r) => [r.grp, r.id] as [number, number]));
      if (page.next === null) break;
      assert.equal(page.rows.length, 7);
      url = `http://x/items?limit=1000&after=${page.next}`;
    }
    const expected = [...Array(40).keys()].map((i) => [(i + 1) % 3, i + 1] as [number, number])
      .sort((a, b) => b[0] - a[0] || b[1] - a[1]);
    assert.deepEqual(seen, expected);
    const exact = await server.request("http://x/items?limit=40");
    assert.equal((await exact.json() as Page).rows.length, 7);
  } finally {
    await endPool(sql);
  }
});

test("paginate() answers 400 problem+json to malformed, tampered, unsigned or foreign tokens and bad limits", async () => {
  const { sql } = connect();
  try {
    const q = "select g as id from generate_series(1, 10) g";
    const signed = appFor(sql, q, { key: "id", limit: 3, secret: "s3cret" });
    const first = await (await signed.request("http://x/items")).json() as Page;
    assert.ok(first.next);
    const ok = await signed.request(`http://x/items?after=${first.next}`);
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json() as Page).rows.map((r) => r.id), [4, 5, 6]);

    const [payload, signature] = first.next.split(".") as [string, string];
    const forged = btoa(JSON.stringify({ k: ["id"], d: "asc", a: ["8"] }))
      .replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
    const bad = [
      "garbage!",
      "",
      payload, // unsigned while a secret is set
      `${forged}.${signature}`, // another payload under a valid-looking signature
      `${payload}.${signature.slice(0, -2)}AA`, // tampered signature
      `${payload}.${signature}.x`,
      await encodeAfterToken(["3"], { key: ["id"], direction: "asc", secret: "other" }),
      await encodeAfterToken(["3"], { key: ["id"], direction: "desc", secret: "s3cret" }),
      await encodeAfterToken(["3"], { key: ["other"], direction: "asc", secret: "s3cret" }),
      await encodeAfterToken(["3", "4"], { key: ["id"], direction: "asc", secret: "s3cret" }),
    ];
    for (const token of bad) {
      const res = await signed.request(`http://x/items?after=${encodeURIComponent(token)}`);
      assert.equal(res.status, 400, `token ${JSON.stringify(token)}`);
      assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
      const problem = await res.json() as { status: number; code: string };
      assert.equal(problem.status, 400);
      assert.equal(problem.code, "BAD_INPUT");
    }
    // Unsigned mode: a well-formed token of the wrong shape is still refused.
    const unsigned = appFor(sql, q, { key: "id" });
    const wrongShape = btoa(JSON.stringify({ k: ["id"], d: "asc", a: [3] })).replace(/=+$/, "");
    assert.equal((await unsigned.request(`http://x/items?after=${wrongShape}`)).status, 400);
    for (const limit of ["0", "-1", "abc", "1.5", "99999999999"]) {
      assert.equal((await signed.request(`http://x/items?limit=${limit}`)).status, 400, limit);
    }
    // Bad options are the programmer's error: a 500 problem, the error to onError.
    assert.ok(await misconfigured(sql, q, { key: "id", maxLimit: 0 }) instanceof RangeError);
  } finally {
    await endPool(sql);
  }
});

test("after tokens round-trip any key text and refuse any change to a signed token", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.string({ unit: "grapheme" }), { minLength: 1, maxLength: 3 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (values, position, flip) => {
        const options = {
          key: values.map((_, i) => `k${i}`),
          direction: "asc" as const,
          secret: "secret",
        };
        const token = await encodeAfterToken(values, options);
        assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
        assert.deepEqual(await decodeAfterToken(token, options), values);
        const i = position % token.length;
        const changed = token.slice(0, i) +
          String.fromCharCode(token.charCodeAt(i) ^ flip) + token.slice(i + 1);
        if (changed === token) return;
        const decoded = await decodeAfterToken(changed, options).catch((e) => e);
        // base64url's last character may carry unused bits: a change there can decode to the
        // same bytes, which is not a forgery.
        if (Array.isArray(decoded)) assert.deepEqual(decoded, values);
        else assert.equal(decoded.code, "BAD_INPUT");
      },
    ),
    { numRuns: 300 },
  );
});

test("streamQuery() continues a keyset stream after a paginate() token, and refuses a bad one", async () => {
  const { sql } = connect();
  try {
    const q = "select g as id, 'v' || g as v from generate_series(1, 30) g";
    const app = new Hono();
    // Another route accepts the tokens when both name the same scope.
    const scope = "numbers";
    app.get("/page", (c) => paginate(c, sql, q, { key: "id", limit: 12, secret: "k", scope }));
    app.get(
      "/rest",
      (c) => streamQuery(c, sql, q, { key: "id", secret: "k", format: "ndjson", scope }),
    );
    const page = await (await app.request("http://x/page")).json() as Page;
    const res = await app.request(`http://x/rest?after=${page.next}`);
    assert.equal(res.status, 200);
    const ids = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).id);
    assert.deepEqual(ids, [...Array(18).keys()].map((i) => i + 13));
    const bad = await app.request(`http://x/rest?after=${page.next}x`);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json() as { code: string }).code, "BAD_INPUT");
  } finally {
    await endPool(sql);
  }
});

async function problemCode(res: Response): Promise<string> {
  assert.equal(res.status, 400);
  assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
  return (await res.json() as { code: string }).code;
}

test("signed tokens are bound to the path and the query's parameters: another owner, route or streamQuery() refuses them", async () => {
  const { sql } = connect();
  try {
    const owned = (owner: string | undefined) =>
      sql`select g as id, ${owner ?? ""}::text as owner from generate_series(1, 30) g`;
    const options: PaginateOptions = { key: "id", limit: 5, secret: "k" };
    const app = new Hono();
    app.get("/page", (c) => paginate(c, sql, owned(c.req.query("owner")), options));
    app.get("/other", (c) => paginate(c, sql, owned(c.req.query("owner")), options));
    app.get(
      "/rest",
      (c) =>
        streamQuery(c, sql, owned(c.req.query("owner")), {
          key: "id",
          secret: "k",
          format: "ndjson",
        }),
    );
    // A SQL string whose text carries the value (no parameters).
    app.get("/text", (c) =>
      paginate(
        c,
        sql,
        `select g as id from generate_series(1, ${Number(c.req.query("n") ?? 30)}) g`,
        options,
      ));

    const alice = await (await app.request("http://x/page?owner=alice")).json() as Page;
    assert.ok(alice.next);
    const own = await app.request(`http://x/page?owner=alice&after=${alice.next}`);
    assert.equal(own.status, 200);
    assert.deepEqual((await own.json() as Page).rows.map((r) => r.id), [6, 7, 8, 9, 10]);
    for (
      const url of [
        `http://x/page?owner=bob&after=${alice.next}`,
        `http://x/page?after=${alice.next}`,
        `http://x/other?owner=alice&after=${alice.next}`,
        `http://x/rest?owner=alice&after=${alice.next}`,
      ]
    ) {
      assert.equal(await problemCode(await app.request(url)), "BAD_INPUT", url);
    }
    const text = await (await app.request("http://x/text?n=30")).json() as Page;
    assert.equal((await app.request(`http://x/text?n=30&after=${text.next}`)).status, 200);
    assert.equal(
      await problemCode(await app.request(`http://x/text?n=31&after=${text.next}`)),
      "BAD_INPUT",
    );
  } finally {
    await endPool(sql);
  }
});

test("a caller-given scope binds tokens in place of the path and query, so streamQuery() can continue a paginate() walk", async () => {
  const { sql } = connect();
  try {
    const q = (owner: string | undefined) =>
      sql`select g as id, ${owner ?? ""}::text as owner from generate_series(1, 30) g`;
    const app = new Hono();
    app.get("/page", (c) =>
      paginate(c, sql, q(c.req.query("owner")), {
        key: "id",
        limit: 12,
        secret: "k",
        scope: `orders of ${c.req.query("owner")}`,
      }));
    app.get("/export", (c) =>
      streamQuery(c, sql, `select g as id from generate_series(1, 30) g`, {
        key: "id",
        secret: "k",
        format: "ndjson",
        scope: `orders of ${c.req.query("owner")}`,
      }));
    const page = await (await app.request("http://x/page?owner=alice")).json() as Page;
    const rest = await app.request(`http://x/export?owner=alice&after=${page.next}`);
    assert.equal(rest.status, 200);
    const ids = (await rest.text()).trim().split("\n").map((l) => JSON.parse(l).id);
    assert.deepEqual(ids, [...Array(18).keys()].map((i) => i + 13));
    assert.equal(
      await problemCode(await app.request(`http://x/export?owner=bob&after=${page.next}`)),
      "BAD_INPUT",
    );
    // A token bound to the path and query is not one bound to a scope.
    const unscoped = await encodeAfterToken(["12"], { key: ["id"], direction: "asc", secret: "k" });
    assert.equal(
      await problemCode(await app.request(`http://x/export?owner=alice&after=${unscoped}`)),
      "BAD_INPUT",
    );
    // Bad scopes are the programmer's error.
    assert.ok(
      await misconfigured(sql, "select 1 as id", { key: "id", scope: "" }) instanceof TypeError,
    );
  } finally {
    await endPool(sql);
  }
});

test("paginate() builds Link from the request's path and query or a configured base, never from Host", async () => {
  const { sql } = connect();
  try {
    const q = "select g as id from generate_series(1, 10) g";
    const app = new Hono();
    app.get("/items", (c) => paginate(c, sql, q, { key: "id", limit: 3, secret: "k" }));
    app.get("/based", (c) =>
      paginate(c, sql, q, {
        key: "id",
        limit: 3,
        secret: "k",
        linkBase: "https://api.example.com/v1",
      }));
    // What a request with `Host: evil.example` looks like to the handler.
    const res = await app.request(
      new Request("http://evil.example/items?limit=3", { headers: { Host: "evil.example" } }),
    );
    const page = await res.json() as Page;
    const link = res.headers.get("link") ?? "";
    assert.doesNotMatch(link, /evil/);
    const target = /^<(.+)>; rel="next"$/.exec(link)?.[1];
    assert.ok(target !== undefined, `Link header: ${link}`);
    // A reference relative to the URL the client asked for.
    const next = new URL(target, "https://shop.example/api/items?limit=3");
    assert.equal(next.origin + next.pathname, "https://shop.example/api/items");
    assert.equal(next.searchParams.get("limit"), "3");
    assert.equal(next.searchParams.get("after"), page.next);

    const based = await app.request(new Request("http://evil.example/based?limit=3"));
    const basedPage = await based.json() as Page;
    assert.equal(
      based.headers.get("link"),
      `<https://api.example.com/v1/based?limit=3&after=${basedPage.next}>; rel="next"`,
    );
    for (const linkBase of ["/v1", "ftp://x.example", "https://x.example/?a=1", 3]) {
      // deno-lint-ignore no-explicit-any
      const error = await misconfigured(sql, q, { key: "id", linkBase: linkBase as any });
      assert.ok(error instanceof TypeError, String(linkBase));
    }
  } finally {
    await endPool(sql);
  }
});

/** Runs paginate() with bad options: asserts a problem+json 500 and returns what onError got. */
async function misconfigured(
  sql: Sql,
  q: string,
  options: PaginateOptions,
): Promise<unknown> {
  let seen: unknown;
  const app = new Hono();
  app.get("/", (c) => paginate(c, sql, q, { ...options, onError: (e) => void (seen = e) }));
  const res = await app.request("/");
  assert.equal(res.status, 500);
  assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  return seen;
}
