// Every query form (postgres.js fragment, SQL string, `{ query, params }`, `sql.unsafe(text,
// params)`, Kysely's compiled queries, Drizzle's builders and `sql` templates) through every
// public function and path with postgres.js: parameters must reach the server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import postgres from "postgres";
import { and, gt, inArray, lte, sql as dsql } from "drizzle-orm";
import { integer, PgDialect, pgTable, text } from "drizzle-orm/pg-core";
import { drizzle } from "drizzle-orm/postgres-js";
import {
  forEachBatch,
  loadIncludes,
  streamBatches,
  streamCsv,
  streamJsonArray,
  streamNdjson,
  streamRows,
  streamSse,
} from "../../mod.ts";
import type { DatabaseQuery } from "../../mod.ts";
import { paginate, streamQuery } from "../../lib/hono/mod.ts";
import { isRetryableError } from "../../lib/sources/postgres_keyset.ts";
import { busySessions, connect, DATABASE_URL, endPool, uniqueName } from "../_db.ts";
import type { Sql } from "../_db.ts";
import { kysely } from "../_builders.ts";

async function bodyOf(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

async function rowsOf(sql: Sql, query: DatabaseQuery, options = {}): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const row of streamRows(sql, query, options)) out.push(row);
  return out;
}

/** A table `id int primary key, shop text, name text` with ids 1…n, shops "a"/"b" alternating. */
async function withTable(
  n: number,
  fn: (sql: Sql, table: string, app: string) => Promise<void>,
): Promise<void> {
  const { sql, app } = connect();
  const table = uniqueName("sluice_q");
  try {
    await sql.unsafe(`create table ${table} (id int primary key, shop text, name text)`);
    await sql.unsafe(
      `insert into ${table} select g, case when g % 2 = 0 then 'b' else 'a' end, 'n' || g from generate_series(1, ${n}) g`,
    );
    await fn(sql, table, app);
    assert.deepEqual(await busySessions(sql, app), []);
  } finally {
    await sql.unsafe(`drop table if exists ${table}`).catch(() => {});
    await endPool(sql);
  }
}

test("every query form reaches the server with its parameters (streamRows)", async () => {
  // Drizzle's postgres-js driver changes its client's parsers: give it a client of its own (never
  // connected; the builders are only compiled).
  const client = postgres(DATABASE_URL, { max: 1 });
  try {
    await withTable(10, async (sql, table) => {
      const items = pgTable(table, { id: integer("id").primaryKey(), shop: text("shop") });
      const db = drizzle(client);
      const forms: [string, DatabaseQuery][] = [
        ["fragment", sql`select id from ${sql(table)} where id > ${7} order by id`],
        ["{ query, params }", {
          query: `select id from ${table} where id > $1 order by id`,
          params: [7],
        }],
        [
          "sql.unsafe(text, params)",
          sql.unsafe(`select id from ${table} where id > $1 order by id`, [7]),
        ],
        [
          "Kysely compile()",
          kysely.selectFrom(table).select("id").where("id", ">", 7).orderBy("id").compile(),
        ],
        [
          "Drizzle builder",
          db.select({ id: items.id }).from(items).where(gt(items.id, 7)).orderBy(items.id),
        ],
        [
          "Drizzle toSQL()",
          db.select({ id: items.id }).from(items).where(gt(items.id, 7)).orderBy(items.id).toSQL(),
        ],
        [
          "Drizzle PgDialect#sqlToQuery()",
          new PgDialect().sqlToQuery(
            dsql`select ${items.id} from ${items} where ${items.id} > ${7} order by 1`,
          ),
        ],
        [
          "Drizzle sql template",
          dsql`select ${items.id} from ${items} where ${items.id} > ${7} order by 1`,
        ],
      ];
      for (const [name, query] of forms) {
        assert.deepEqual(await rowsOf(sql, query), [{ id: 8 }, { id: 9 }, { id: 10 }], name);
      }
    });
  } finally {
    await client.end({ timeout: 1 });
  }
});

test("parameters reach the server in every format, through the cursor and the COPY fallback", async () => {
  await withTable(30, async (sql, table) => {
    const query = {
      query: `select id, name from ${table} where shop = $1 and id <= $2 order by id;`,
      params: ["a", 9],
    };
    const ids = [1, 3, 5, 7, 9];
    const expected = ids.map((id) => ({ id, name: `n${id}` }));
    // COPY takes no parameters: the byte formats fall back to the cursor (copy is on by default).
    for (const copy of [true, false]) {
      const ndjson = await bodyOf(streamNdjson(sql, query, { copy }));
      assert.deepEqual(ndjson.trimEnd().split("\n").map((l) => JSON.parse(l)), expected, "ndjson");
      const csv = await bodyOf(streamCsv(sql, query, { copy }));
      assert.equal(csv, "id,name\n" + ids.map((id) => `${id},n${id}\n`).join(""), "csv");
    }
    assert.deepEqual(JSON.parse(await bodyOf(streamJsonArray(sql, query))), expected, "json array");
    const sse = await bodyOf(streamSse(sql, query));
    const events = sse.split("\n\n").filter((e) => e.startsWith("event: rows\n"));
    const data = events.map((e) => e.split("\n").slice(1).map((l) => l.slice(6)).join("\n"));
    assert.deepEqual(data.flatMap((d) => JSON.parse(d)), expected, "sse");
    const batches: unknown[] = [];
    for await (const batch of streamBatches(sql, query, { firstBatchRows: 2 })) {
      batches.push(...batch);
    }
    assert.deepEqual(batches, expected, "streamBatches");
    const seen: unknown[] = [];
    await forEachBatch(streamBatches(sql, query), (batch) => void seen.push(...batch));
    assert.deepEqual(seen, expected, "forEachBatch");
    assert.deepEqual(await rowsOf(sql, query, { firstBatchRows: 1 }), expected, "streamRows");
  });
});

test("keyset streams page with the query's parameters, in every format", async () => {
  await withTable(200, async (sql, table) => {
    const query = {
      query: `select id, name from ${table} where shop = $1 and id > $2`,
      params: ["b", 100],
    };
    const expected = Array.from(
      { length: 50 },
      (_, i) => ({ id: 102 + 2 * i, name: `n${102 + 2 * i}` }),
    );
    const options = { key: "id", firstBatchRows: 7 };
    assert.deepEqual(await rowsOf(sql, query, options), expected, "rows");
    const ndjson = await bodyOf(streamNdjson(sql, query, options));
    assert.deepEqual(ndjson.trimEnd().split("\n").map((l) => JSON.parse(l)), expected, "ndjson");
    const csv = await bodyOf(streamCsv(sql, query, options));
    assert.equal(csv, "id,name\n" + expected.map((r) => `${r.id},${r.name}\n`).join(""), "csv");
    const kysely1 = kysely.selectFrom(table).select(["id", "name"]).where("shop", "=", "b")
      .where("id", ">", 100).compile();
    assert.deepEqual(
      await rowsOf(sql, kysely1, { key: "id", after: [150], firstBatchRows: 3 }),
      expected.filter((r) => r.id > 150),
      "Kysely, after",
    );
    const desc = await rowsOf(sql, query, { key: "id", direction: "desc", firstBatchRows: 9 });
    assert.deepEqual(desc, [...expected].reverse(), "desc");
  });
});

test("include: parent and related queries in any form carry their parameters", async () => {
  await withTable(20, async (sql, table) => {
    const parents = { query: `select id, shop from ${table} where id <= $1`, params: [4] };
    const include = {
      same: {
        key: "shop",
        childKey: "shop",
        many: (shops: string[]) =>
          kysely.selectFrom(table).select(["id", "shop"]).where("shop", "in", shops)
            .where("id", ">", 16).orderBy("id").compile(),
      },
      self: {
        key: "id",
        childKey: "id",
        one: (ids: number[]) => ({
          query: `select id, name from ${table} where id = any($1::int[])`,
          params: [ids],
        }),
      },
    };
    const expected = [1, 2, 3, 4].map((id) => ({
      id,
      shop: id % 2 ? "a" : "b",
      same: (id % 2 ? [17, 19] : [18, 20]).map((c) => ({ id: c, shop: id % 2 ? "a" : "b" })),
      self: { id, name: `n${id}` },
    }));
    const byId = (a: unknown[]) => (a as { id: number }[]).sort((x, y) => x.id - y.id);
    assert.deepEqual(byId(await rowsOf(sql, parents, { include })), expected, "objects, cursor");
    assert.deepEqual(
      byId(await rowsOf(sql, parents, { include, key: "id", firstBatchRows: 3 })),
      expected,
      "objects, keyset",
    );
    const ndjson = await bodyOf(streamNdjson(sql, parents, { include }));
    assert.deepEqual(
      byId(ndjson.trimEnd().split("\n").map((l) => JSON.parse(l))),
      expected,
      "json, cursor",
    );
    const ndjsonKeyset = await bodyOf(streamNdjson(sql, parents, { include, key: "id" }));
    assert.deepEqual(
      ndjsonKeyset.trimEnd().split("\n").map((l) => JSON.parse(l)),
      expected,
      "json, keyset",
    );
    const loaded = [{ id: 3 }];
    await loadIncludes(sql, loaded, { self: include.self });
    assert.deepEqual(loaded, [{ id: 3, self: { id: 3, name: "n3" } }], "loadIncludes");
  });
});

test("keyset: a protocol error fails at once, not as a lost connection", async () => {
  await withTable(3, async (sql, table) => {
    // The page's LIMIT is $1 and the query refers to $2 without supplying it: the server refuses
    // the Bind (08P01), as it refused the Bind of queries whose parameters were dropped.
    const query = { query: `select $2::int as id from ${table}`, params: [] };
    const retries: unknown[] = [];
    const started = Date.now();
    await assert.rejects(
      rowsOf(sql, query, { key: "id", onRetry: (info: unknown) => retries.push(info) }),
      (error: { code?: string; name?: string }) => {
        assert.equal(error.code, "08P01");
        assert.notEqual(error.name, "SluiceError");
        return true;
      },
    );
    assert.deepEqual(retries, []);
    assert.ok(Date.now() - started < 1000, "the page was retried");
  });
});

test("a protocol error is a 500 over HTTP, not a 503 'retry later', and fails a keyset stream at once", async () => {
  await withTable(3, async (sql, table) => {
    // `$2` written into the template's text: postgres.js binds one parameter, the statement
    // takes two, and the server refuses the Bind (08P01).
    const query = sql`select id, ${1}::int as a, $2::int as b from ${sql(table)}`;
    const app = new Hono();
    app.get("/rows", (c) => streamQuery(c, sql, query));
    const res = await app.request("/rows");
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("retry-after"), null);
    assert.equal((await res.json() as { code?: string }).code, "08P01");
    const retries: unknown[] = [];
    await assert.rejects(
      rowsOf(sql, query, { key: "id", onRetry: (info: unknown) => retries.push(info) }),
      (error: { code?: string }) => error.code === "08P01",
    );
    assert.deepEqual(retries, []);
  });
});

test("isRetryableError(): PgBouncer's 08P01 is retried, the server's own is not", async () => {
  const { sql } = connect();
  try {
    const server = await sql.unsafe("select $1::int, $2::int", [1]).catch((e: unknown) => e);
    assert.equal((server as { code?: string }).code, "08P01");
    assert.equal(isRetryableError(server), false);
    // What PgBouncer sends when its server connection dies: severity, code and message only.
    assert.equal(isRetryableError({ code: "08P01", message: "server conn crashed?" }), true);
  } finally {
    await endPool(sql);
  }
});

test("Hono streamQuery() and paginate() send the query's parameters", async () => {
  await withTable(40, async (sql, table) => {
    const app = new Hono();
    app.get("/rows", (c) =>
      streamQuery(c, sql, {
        query: `select id from ${table} where id > $1 order by id`,
        params: [Number(c.req.query("from"))],
      }));
    app.get("/page", (c) =>
      paginate(
        c,
        sql,
        kysely.selectFrom(table).select("id").where("shop", "=", c.req.query("shop")!).compile(),
        { key: "id", limit: 5 },
      ));
    for (
      const accept of ["application/x-ndjson", "text/csv", "application/json", "text/event-stream"]
    ) {
      const res = await app.request("/rows?from=37", { headers: { accept } });
      assert.equal(res.status, 200, accept);
      const body = await res.text();
      for (const id of [38, 39, 40]) assert.match(body, new RegExp(`\\b${id}\\b`), accept);
      assert.doesNotMatch(body, /\b37\b/, accept);
    }
    const res = await app.request("/page?shop=b");
    assert.equal(res.status, 200);
    const page = await res.json() as { rows: { id: number }[]; next: string | null };
    assert.deepEqual(page.rows.map((r) => r.id), [2, 4, 6, 8, 10]);
    const next = await (await app.request(`/page?shop=b&after=${page.next}`)).json() as {
      rows: { id: number }[];
    };
    assert.deepEqual(next.rows.map((r) => r.id), [12, 14, 16, 18, 20]);
  });
});

test("Drizzle: rows carry the SQL column names; .as() or a column transform gives the field names", async () => {
  const client = postgres(DATABASE_URL, { max: 1 });
  try {
    await withTable(3, async (sql, table) => {
      const items = pgTable(table, { id: integer("id"), shopName: text("shop") });
      const db = drizzle(client);
      // Drizzle names the field in its own row mapping only: the SQL selects "shop".
      const plain = db.select({ key: items.id, shopName: items.shopName }).from(items)
        .where(lte(items.id, 1));
      assert.deepEqual(await rowsOf(sql, plain), [{ id: 1, shop: "a" }]);
      // Aliases in the SQL name the columns in every format and for every driver.
      const aliased = db.select({
        key: dsql<number>`${items.id}`.as("key"),
        shopName: dsql<string>`${items.shopName}`.as("shopName"),
      }).from(items).where(and(lte(items.id, 1), inArray(items.shopName, ["a", "b"])));
      assert.deepEqual(await rowsOf(sql, aliased), [{ key: 1, shopName: "a" }]);
      const kyselyAliased = kysely.selectFrom(table).select(["id as key", "shop as shopName"])
        .where("id", "=", 1).compile();
      assert.deepEqual(await rowsOf(sql, kyselyAliased), [{ key: 1, shopName: "a" }]);
      // For objects, postgres.js's own column transform maps snake_case columns to camelCase.
      const camel = postgres(DATABASE_URL, { max: 1, transform: postgres.camel });
      try {
        const q = {
          query: `select id, shop as shop_name from ${table} where id = $1`,
          params: [1],
        };
        assert.deepEqual(await rowsOf(camel, q), [{ id: 1, shopName: "a" }]);
      } finally {
        await camel.end({ timeout: 1 });
      }
    });
  } finally {
    await client.end({ timeout: 1 });
  }
});

test("a Kysely builder that was not compiled is refused with a hint", async () => {
  const { sql } = connect();
  try {
    const builder = kysely.selectFrom("t").select("id");
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      async () => await rowsOf(sql, builder as any),
      (e: Error) => e instanceof TypeError && /compile\(\)/.test(e.message),
    );
  } finally {
    await endPool(sql);
  }
});

test("a SQL string runs as one statement: a second one is refused, not run", async () => {
  await withTable(2, async (sql, table) => {
    for (const key of [undefined, "id"]) {
      const query = `select id from ${table}; commit; delete from ${table}`;
      await assert.rejects(
        rowsOf(sql, query, { key }),
        (e: { code?: string }) => e.code === "42601",
      );
    }
    await assert.rejects(
      rowsOf(sql, {
        query: `select id from ${table} where id = $1; delete from ${table}`,
        params: [1],
      }),
      (e: { code?: string }) => e.code === "42601",
    );
    const [row] = await sql.unsafe(`select count(*)::int as n from ${table}`);
    assert.equal(row?.n, 2);
  });
});
