import { test } from "node:test";
import assert from "node:assert/strict";
import type postgres from "postgres";
import {
  loadIncludes,
  streamBatches,
  streamCsv,
  streamJsonArray,
  streamNdjson,
  streamRows,
} from "../mod.ts";
import type { BatchInfo, IncludeMap, Row } from "../mod.ts";
import { busySessions, connect, endPool, sessions, uniqueName, waitFor } from "./_db.ts";
import type { Sql } from "./_db.ts";

/** Asserts that the app has no session in a transaction and that its pool drains. */
async function assertClean(sql: Sql, app: string, admin: Sql): Promise<void> {
  const clean = await waitFor(async () => (await busySessions(admin, app)).length === 0, 2000);
  assert.ok(clean, `sessions left busy: ${(await busySessions(admin, app)).join("; ")}`);
  await endPool(sql);
  const gone = await waitFor(async () => (await sessions(admin, app)).length === 0, 2000);
  assert.ok(gone, "the pool did not close its connections");
}

/** Table names of one shop schema. */
interface Shop {
  customers: string;
  orders: string;
  items: string;
  products: string;
  invoices: string;
}

const ORDERS = 60;

/**
 * A small shop: 60 orders; every 7th has no customer, customers repeat across batches; orders
 * with id % 4 = 0 have no items; product 6 does not exist (a `one` without match); orders with
 * id % 3 = 0 have an invoice (one-to-one). `items.order_id` is a bigint (a string in postgres.js)
 * matched against the int `orders.id` (a number).
 */
async function createShop(admin: Sql): Promise<Shop> {
  const t: Shop = {
    customers: uniqueName("inc_customers"),
    orders: uniqueName("inc_orders"),
    items: uniqueName("inc_items"),
    products: uniqueName("inc_products"),
    invoices: uniqueName("inc_invoices"),
  };
  await admin`create table ${admin(t.customers)} as
    select g as id, 'customer ' || g as name from generate_series(1, 5) g`;
  await admin`create table ${admin(t.orders)} as
    select g as id, case when g % 7 = 0 then null else g % 5 + 1 end as customer_id,
           timestamptz '2024-01-01 10:00:00+00' + g * interval '1 hour' as created,
           'note "' || g || E'"\\n' as note
    from generate_series(1, ${ORDERS}::int) g`;
  await admin`create table ${admin(t.items)} as
    select row_number() over (order by o, k)::int as id, o::bigint as order_id,
           ((o * k) % 6 + 1)::int as product_id, k as qty
    from generate_series(1, ${ORDERS}::int) o, generate_series(1, 3) k
    where o % 4 <> 0 and k <= o % 3 + 1`;
  await admin`create table ${admin(t.products)} as
    select g as id, 'product ' || g as title, (g * 1.25)::numeric(10, 2) as price,
           array[g, g + 1] as tags
    from generate_series(1, 5) g`;
  await admin`create table ${admin(t.invoices)} as
    select g + 1000 as id, g as order_id, (g * 10.5)::numeric(10, 2) as total
    from generate_series(1, ${ORDERS}::int) g where g % 3 = 0`;
  return t;
}

async function dropShop(admin: Sql, t: Shop): Promise<void> {
  for (const name of Object.values(t)) await admin`drop table if exists ${admin(name)}`;
}

/** items → product (nested), the include every "nested" test uses. */
function itemsInclude(sql: Sql, t: Shop, calls?: { items: number; product: number }): IncludeMap {
  return {
    items: {
      key: "id",
      childKey: "order_id",
      many: (ids) => {
        if (calls) calls.items++;
        return sql`select * from ${sql(t.items)} where order_id = any(${ids}) order by id`;
      },
      include: {
        product: {
          key: "product_id",
          childKey: "id",
          one: (ids) => {
            if (calls) calls.product++;
            return sql`select * from ${sql(t.products)} where id = any(${ids})`;
          },
        },
      },
    },
  };
}

/** The reference for orders → items → product: one JOIN, grouped in JS. */
async function joinedItems(admin: Sql, t: Shop): Promise<Row[]> {
  const rows = await admin`
    select o.id, o.customer_id, o.created, o.note,
           i.id as i_id, i.order_id as i_order_id, i.product_id as i_product_id, i.qty as i_qty,
           p.id as p_id, p.title as p_title, p.price as p_price, p.tags as p_tags
    from ${admin(t.orders)} o
    left join ${admin(t.items)} i on i.order_id = o.id
    left join ${admin(t.products)} p on p.id = i.product_id
    order by o.id, i.id`;
  const out: Row[] = [];
  for (const r of rows) {
    let order = out.at(-1);
    if (order === undefined || order.id !== r.id) {
      order = { id: r.id, customer_id: r.customer_id, created: r.created, note: r.note, items: [] };
      out.push(order);
    }
    if (r.i_id === null) continue;
    order.items.push({
      id: r.i_id,
      order_id: r.i_order_id,
      product_id: r.i_product_id,
      qty: r.i_qty,
      product: r.p_id === null
        ? null
        : { id: r.p_id, title: r.p_title, price: r.p_price, tags: r.p_tags },
    });
  }
  return out;
}

/** The reference for orders → customer (many-to-one) and invoice (one-to-one). */
async function joinedCustomerInvoice(admin: Sql, t: Shop): Promise<Row[]> {
  const rows = await admin`
    select o.id, o.customer_id, o.created, o.note, c.id as c_id, c.name as c_name,
           v.id as v_id, v.order_id as v_order_id, v.total as v_total
    from ${admin(t.orders)} o
    left join ${admin(t.customers)} c on c.id = o.customer_id
    left join ${admin(t.invoices)} v on v.order_id = o.id
    order by o.id`;
  return rows.map((r) => ({
    id: r.id,
    customer_id: r.customer_id,
    created: r.created,
    note: r.note,
    customer: r.c_id === null ? null : { id: r.c_id, name: r.c_name },
    invoice: r.v_id === null ? null : { id: r.v_id, order_id: r.v_order_id, total: r.v_total },
  }));
}

function customerInvoiceInclude(sql: Sql, t: Shop): IncludeMap {
  return {
    customer: {
      key: "customer_id",
      childKey: "id",
      one: (ids) => sql`select * from ${sql(t.customers)} where id = any(${ids})`,
    },
    invoice: {
      key: "id",
      childKey: "order_id",
      one: (ids) => sql`select * from ${sql(t.invoices)} where order_id = any(${ids})`,
    },
  };
}

/** Fixed batches of 7 rows: 60 orders → 9 batches, keys repeating across them. */
const SEVEN = { firstBatchRows: 7, minBatchRows: 7, maxBatchRows: 7 };

test("streamBatches() with a nested include equals a JOIN grouped by order (one-to-many, many-to-one, no children)", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const expected = await joinedItems(admin, t);
    const got: Row[] = [];
    const q = sql`select * from ${sql(t.orders)} order by id`;
    for await (const batch of streamBatches(sql, q, { ...SEVEN, include: itemsInclude(sql, t) })) {
      got.push(...batch);
    }
    assert.equal(got.length, ORDERS);
    assert.deepEqual(got, expected);
    assert.ok(got.some((o) => o.items.length === 0), "the data has orders without items");
    assert.ok(
      got.some((o) => o.items.some((i: Row) => i.product === null)),
      "the data has items without a product",
    );
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamRows() with one-to-one and many-to-one includes equals a JOIN (null when missing)", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const expected = await joinedCustomerInvoice(admin, t);
    const got: Row[] = [];
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const include = customerInvoiceInclude(sql, t);
    for await (const row of streamRows(sql, q, { ...SEVEN, include })) got.push(row);
    assert.deepEqual(got, expected);
    // The same customer object is shared by the orders of a batch, like selectinload does.
    assert.ok(got.some((o) => o.customer === null) && got.some((o) => o.invoice === null));
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamBatches() sends exactly batches × (1 + include levels) statements besides begin/declare/commit", async () => {
  const statements: string[] = [];
  const { sql, app } = connect({ debug: (_: number, query: string) => statements.push(query) });
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const calls = { items: 0, product: 0 };
    const infos: BatchInfo[] = [];
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const options = {
      ...SEVEN,
      include: itemsInclude(sql, t, calls),
      onBatch: (i: BatchInfo) => infos.push(i),
    };
    let n = 0;
    for await (const batch of streamBatches(sql, q, options)) n += batch.length;
    assert.equal(n, ORDERS);
    const batches = infos.length;
    assert.equal(batches, Math.ceil(ORDERS / 7));
    assert.deepEqual(calls, { items: batches, product: batches });
    // postgres.js's one-time array type lookup on a new connection is not the stream's.
    const sent = statements.filter((s) => !s.includes("pg_catalog.pg_type"));
    const fetches = sent.filter((s) => /^fetch /.test(s)).length;
    const others = sent.filter((s) => !/^fetch /.test(s));
    assert.equal(fetches, batches);
    // Everything else is begin, declare, one items query and one products query per batch, commit.
    assert.equal(others.length, 3 + batches * 2, others.join("\n"));
    assert.equal(sent.length, 3 + batches * (1 + 2));
    assert.equal(others.filter((s) => s.includes(t.items)).length, batches);
    assert.equal(others.filter((s) => s.includes(t.products)).length, batches);
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("loadIncludes() attaches nested includes to rows fetched any way, one query per include", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const calls = { items: 0, product: 0 };
    const orders = [...await sql`select * from ${sql(t.orders)} order by id`];
    const bytes = await loadIncludes(sql, orders, itemsInclude(sql, t, calls));
    assert.deepEqual(orders, await joinedItems(admin, t));
    assert.deepEqual(calls, { items: 1, product: 1 });
    const [w] = await admin`
      select (select sum(octet_length(id::text) + octet_length(order_id::text)
                       + octet_length(product_id::text) + octet_length(qty::text))
              from ${admin(t.items)})::int +
             (select sum(octet_length(id::text) + octet_length(title) + octet_length(price::text)
                       + octet_length(tags::text))
              from ${admin(t.products)} where id in (select product_id from ${admin(t.items)}))::int
             as n`;
    assert.equal(bytes, w!.n, "bytes are the related rows' text-format bytes");
    // No parent has a key: no query at all.
    const none = [{ id: null }, { id: null }];
    assert.equal(await loadIncludes(sql, none, itemsInclude(sql, t, calls)), 0);
    assert.deepEqual(none, [{ id: null, items: [] }, { id: null, items: [] }]);
    assert.deepEqual(calls, { items: 1, product: 1 });
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test(
  "streamBatches() counts a parent's 100,000 children toward its batch and shrinks the next fetch",
  {
    timeout: 120_000,
  },
  async () => {
    const { sql, app } = connect();
    const admin = connect().sql;
    const parents = uniqueName("inc_parents");
    const children = uniqueName("inc_children");
    const HEAVY = 1500;
    const target = 256 * 1024;
    try {
      await admin`create table ${admin(parents)} as
      select g as id, md5(g::text) as name from generate_series(1, 3000) g`;
      await admin`create table ${admin(children)} as
      select row_number() over ()::int as id, p as parent_id, md5(p::text || '/' || k) as v
      from generate_series(1, 3000) p,
           generate_series(1, case when p = ${HEAVY} then 100000 else 2 end) k`;
      const [w] = await admin`
      select (select sum(octet_length(id::text) + octet_length(name)) from ${admin(parents)})::int
               as parents,
             (select sum(octet_length(id::text) + octet_length(parent_id::text) + octet_length(v))
              from ${admin(children)})::int as children,
             (select sum(octet_length(id::text) + octet_length(parent_id::text) + octet_length(v))
              from ${admin(children)} where parent_id = ${HEAVY})::int as heavy`;
      const infos: BatchInfo[] = [];
      let heavyIndex = -1;
      let heavyChildren = 0;
      let seen = 0;
      const q = sql`select * from ${sql(parents)} order by id`;
      const stream = streamBatches(sql, q, {
        targetBatchBytes: target,
        onBatch: (i) => infos.push(i),
        include: {
          children: {
            key: "id",
            childKey: "parent_id",
            many: (ids) => sql`select * from ${sql(children)} where parent_id = any(${ids})`,
          },
        },
      });
      for await (const batch of stream) {
        for (const row of batch) {
          if (row.id === HEAVY) heavyIndex = infos.length - 1, heavyChildren = row.children.length;
          else assert.equal(row.children.length, 2);
        }
        seen += batch.length;
      }
      assert.equal(seen, 3000);
      assert.equal(heavyChildren, 100_000);
      // Every byte of every child is counted, once.
      const total = infos.reduce((s, i) => s + i.bytes, 0);
      assert.equal(total, w!.parents + w!.children);
      const heavy = infos[heavyIndex]!;
      assert.ok(heavy.bytes >= w!.heavy, `the heavy batch weighs ${heavy.bytes} bytes`);
      // The memory bound: the heavy batch is its one parent's children plus at most ~one target; the
      // next fetch shrinks instead of asking for as many rows again, and every other batch stays
      // within 25% of the target.
      assert.ok(heavy.bytes <= w!.heavy + 1.25 * target, `heavy batch: ${heavy.bytes} bytes`);
      assert.ok(
        heavy.nextRows * 4 < heavy.rows,
        `next fetch ${heavy.nextRows} after ${heavy.rows}`,
      );
      assert.ok(infos[heavyIndex + 1]!.rows === heavy.nextRows);
      for (const info of infos) {
        if (info.index === heavyIndex) continue;
        assert.ok(info.bytes <= 1.25 * target, `batch ${info.index}: ${info.bytes} bytes`);
      }
      await assertClean(sql, app, admin);
    } finally {
      await admin`drop table if exists ${admin(parents)}`;
      await admin`drop table if exists ${admin(children)}`;
      await endPool(admin);
    }
  },
);

test("streamBatches() ends through the normal cleanup when an include query fails mid-stream", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const q = sql`select * from ${sql(t.orders)} order by id`;
    let batches = 0;
    const stream = streamBatches(sql, q, {
      ...SEVEN,
      include: {
        items: {
          key: "id",
          childKey: "order_id",
          // Division by zero once the batch holding order 21 is loaded (the third).
          many: (ids) =>
            sql`select *, 1 / (order_id - 21) as boom from ${sql(t.items)}
                where order_id = any(${ids})`,
        },
      },
    });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) batches++;
      })(),
      (error: { code?: string; name?: string }) => {
        assert.equal(error.code, "22012", "PostgreSQL's error passes through unchanged");
        return true;
      },
    );
    assert.equal(batches, 2);
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamBatches() aborts a running include query and frees the connection", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const controller = new AbortController();
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const stream = streamBatches(sql, q, {
      signal: controller.signal,
      include: {
        items: {
          key: "id",
          childKey: "order_id",
          many: (ids) =>
            sql`select i.* from ${sql(t.items)} i, pg_sleep(30) where order_id = any(${ids})`,
        },
      },
    });
    const reader = stream.getReader();
    const read = reader.read();
    const sleeping = await waitFor(async () =>
      (await sessions(admin, app)).some((s) => s.state === "active" && s.query.includes("pg_sleep"))
    );
    assert.ok(sleeping, "the include query never ran");
    const started = Date.now();
    controller.abort(new Error("stop"));
    await assert.rejects(read, /stop/);
    assert.ok(Date.now() - started < 5000, "the abort waited for the include query");
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamRows() with include works on a pool of one connection (related rows use the stream's connection)", async () => {
  const { sql, app } = connect({ max: 1 });
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const got: Row[] = [];
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const include = { ...customerInvoiceInclude(sql, t), ...itemsInclude(sql, t) };
    const reading = (async () => {
      for await (const row of streamRows(sql, q, { ...SEVEN, include })) got.push(row);
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hang = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("deadlocked on a pool of one")), 10_000);
    });
    await Promise.race([reading, hang]).finally(() => clearTimeout(timer));
    const items = await joinedItems(admin, t);
    const customers = await joinedCustomerInvoice(admin, t);
    assert.deepEqual(got, customers.map((c, i) => ({ ...c, items: items[i]!.items })));
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamRows() and streamNdjson() with include work in keyset mode (related rows on the pool)", async () => {
  const statements: string[] = [];
  const { sql, app } = connect({ max: 1, debug: (_: number, q: string) => statements.push(q) });
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const q = sql`select * from ${sql(t.orders)}`;
    const include = { ...customerInvoiceInclude(sql, t), ...itemsInclude(sql, t) };
    const infos: BatchInfo[] = [];
    const options = { ...SEVEN, key: "id", include, onBatch: (i: BatchInfo) => infos.push(i) };
    const got: Row[] = [];
    for await (const row of streamRows(sql, q, options)) got.push(row);
    const items = await joinedItems(admin, t);
    const customers = await joinedCustomerInvoice(admin, t);
    assert.deepEqual(got, customers.map((c, i) => ({ ...c, items: items[i]!.items })));
    // customer, invoice, items and items.product: four queries per page.
    const related = statements.filter((s) =>
      [t.customers, t.invoices, t.items, t.products].some((name) => s.includes(name))
    );
    assert.equal(related.length, infos.filter((i) => i.rows > 0).length * 4);
    const text = await new Response(
      streamNdjson(sql, q, { ...SEVEN, key: "id", include: itemsInclude(sql, t) }),
    ).text();
    const expected = await joinedItemsJson(admin, t);
    assert.deepEqual(
      text.trimEnd().split("\n").map((l) => JSON.parse(l)),
      expected.map((e) => e.value),
    );
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

/** The JSON reference for orders → items → product: one JOIN of row_to_json texts, grouped. */
async function joinedItemsJson(admin: Sql, t: Shop): Promise<{ text: string; value: Row }[]> {
  const rows = await admin`
    select row_to_json(o.*)::text as o, row_to_json(i.*)::text as i, row_to_json(p.*)::text as p
    from ${admin(t.orders)} o
    left join ${admin(t.items)} i on i.order_id = o.id
    left join ${admin(t.products)} p on p.id = i.product_id
    order by o.id, i.id`;
  const out: { text: string; value: Row }[] = [];
  for (const r of rows) {
    if (out.at(-1)?.text !== r.o) out.push({ text: r.o, value: { ...JSON.parse(r.o), items: [] } });
    if (r.i === null) continue;
    out.at(-1)!.value.items.push({ ...JSON.parse(r.i), product: r.p && JSON.parse(r.p) });
  }
  return out;
}

test("streamNdjson() nests includes as JSON, every row's own text byte-identical to row_to_json", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const expected = await joinedItemsJson(admin, t);
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const text = await new Response(
      streamNdjson(sql, q, { ...SEVEN, include: itemsInclude(sql, t) }),
    ).text();
    const lines = text.split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, ORDERS);
    for (let i = 0; i < lines.length; i++) {
      assert.ok(
        lines[i]!.startsWith(expected[i]!.text.slice(0, -1) + ',"items":['),
        `line ${i}: ${lines[i]}`,
      );
      assert.deepEqual(JSON.parse(lines[i]!), expected[i]!.value);
    }
    // The products' texts too: "price":1.25, not a JS-rendered "1.25" string.
    assert.match(text, /"product":\{"id":1,"title":"product 1","price":1.25,"tags":\[1,2\]\}/);
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("streamJsonArray() nests includes (one-to-one, many-to-one and nested) in a valid document", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const expected = await joinedItemsJson(admin, t);
    const [...invoices] = await admin`select order_id, row_to_json(v.*)::text as j
      from ${admin(t.invoices)} v`;
    const [...customers] = await admin`select id, row_to_json(c.*)::text as j
      from ${admin(t.customers)} c`;
    const q = sql`select * from ${sql(t.orders)} order by id`;
    const include = { ...itemsInclude(sql, t), ...customerInvoiceInclude(sql, t) };
    const doc = JSON.parse(
      await new Response(streamJsonArray(sql, q, { ...SEVEN, include })).text(),
    );
    assert.deepEqual(
      doc,
      expected.map(({ value }) => ({
        ...value,
        customer: JSON.parse(customers.find((c) => c.id === value.customer_id)?.j ?? "null"),
        invoice: JSON.parse(invoices.find((v) => v.order_id === value.id)?.j ?? "null"),
      })),
    );
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

test("include rejects bad shapes at call time, CSV output and names that hide a column", async () => {
  const { sql, app } = connect();
  const admin = connect().sql;
  const t = await createShop(admin);
  try {
    const q = sql`select * from ${sql(t.orders)}`;
    // deno-lint-ignore no-explicit-any
    const bad = (include: any) => () => streamBatches(sql, q, { include });
    assert.throws(bad([]), /Cannot use include as a map of includes: current value is an array/);
    assert.throws(bad({ items: { childKey: "order_id", many: () => q } }), /include\.items\.key/);
    assert.throws(bad({ items: { key: "id", childKey: "x" } }), /exactly one of many or one/);
    assert.throws(
      bad({ items: { key: "id", childKey: "x", many: () => q, one: () => q } }),
      /exactly one of many or one/,
    );
    assert.throws(
      bad({ a: { key: "id", childKey: "x", many: () => q, include: { b: { key: 1 } } } }),
      /include\.a\.include\.b\.key/,
    );
    assert.throws(
      () => streamCsv(sql, q, { include: itemsInclude(sql, t) }),
      /Cannot use include with streamCsv\(\): CSV rows are flat/,
    );
    const hiding = { note: { key: "id", childKey: "order_id", many: () => q } };
    await assert.rejects(
      new Response(streamNdjson(sql, q, { include: hiding })).text(),
      /already has a column named note/,
    );
    await assert.rejects(
      (async () => {
        for await (const _ of streamRows(sql, q, { include: hiding })) { /* drain */ }
      })(),
      /already has a column named note/,
    );
    await assertClean(sql, app, admin);
  } finally {
    await dropShop(admin, t);
    await endPool(admin);
  }
});

// Type check only: include queries built with a plainly typed postgres.js instance compile.
export function _typed(sql: postgres.Sql): IncludeMap {
  return {
    items: { key: "id", childKey: "order_id", many: (ids) => sql`select ${ids}` },
  };
}
