// JOIN-based eager loading vs `include` (one query per batch per include) vs N+1, on the same data.
// Usage: deno run -A bench/includes.ts            (setup + every mode, writes bench/results/includes.md)
//        bun bench/includes.ts                    (same under Bun)
//        deno run -A bench/includes.ts <mode>     (one measured run; prints one JSON line)
// Each measured run is its own child process, so its peak RSS (VmHWM) is its own.
import process from "node:process";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { streamBatches } from "../mod.ts";
import type { Row } from "../mod.ts";
import { DATABASE_URL, peakRssMb, runtimeName } from "./_common.ts";

// The table size is a CLI argument so that memory can be compared at two sizes.
const ORDERS = Number(process.argv[3] ?? 50_000);
const SIZES = [50_000, 200_000];
const CUSTOMERS = 100;
const T = {
  orders: `bench_inc_orders_${ORDERS}`,
  items: `bench_inc_items_${ORDERS}`,
  customers: `bench_inc_customers_${ORDERS}`,
};
const MODES = [
  "include",
  "join-stream",
  "join-buffered",
  "n-plus-1",
  "m2o-include",
  "m2o-join",
] as const;
type Mode = typeof MODES[number];
const RUNS = Number(process.env.RUNS ?? 3);

let statements = 0;
const sql = postgres(DATABASE_URL, {
  max: 2,
  onnotice: () => {},
  // postgres.js's one-time array type lookup per new connection is not the mode's own work.
  debug: (_: number, query: string) => void (query.includes("pg_catalog.pg_type") || statements++),
});

async function setup(): Promise<void> {
  const [t] = await sql`select to_regclass(${T.items}) as t`;
  if (t!.t) {
    const [c] = await sql`select count(*)::int as n from ${sql(T.orders)}`;
    if (c!.n === ORDERS) return;
  }
  for (const name of Object.values(T)) await sql`drop table if exists ${sql(name)}`;
  await sql`create table ${sql(T.customers)} as
    select g as id, 'customer ' || g as name from generate_series(1, ${CUSTOMERS}::int) g`;
  // ~250 bytes of text per order, 0–20 items (10 on average) of ~40 bytes each.
  await sql`create table ${sql(T.orders)} as
    select g as id, g % ${CUSTOMERS}::int + 1 as customer_id,
           timestamptz '2024-01-01' + g * interval '1 minute' as created,
           repeat(md5(g::text), 6) as note
    from generate_series(1, ${ORDERS}::int) g`;
  await sql`create table ${sql(T.items)} as
    select row_number() over (order by o, k)::int as id, o as order_id,
           'sku-' || (o * k) % 9973 as sku, k as qty, (k * 1.5)::numeric(10, 2) as price
    from generate_series(1, ${ORDERS}::int) o, generate_series(1, 20) k
    where k <= (o * 7919) % 21`;
  await sql`alter table ${sql(T.orders)} add primary key (id)`;
  await sql`alter table ${sql(T.customers)} add primary key (id)`;
  await sql`alter table ${sql(T.items)} add primary key (id)`;
  await sql`create index on ${sql(T.items)} (order_id, id)`;
  for (const name of Object.values(T)) await sql`vacuum analyze ${sql(name)}`;
}

/** What every mode must agree on. */
interface Check {
  orders: number;
  items: number;
  qty: number;
}

function groupJoined(rows: Row[], out: Check, open: { order: Row | undefined }): void {
  for (const r of rows) {
    if (open.order?.id !== r.id) {
      open.order = {
        id: r.id,
        customer_id: r.customer_id,
        created: r.created,
        note: r.note,
        items: [],
      };
      out.orders++;
    }
    if (r.item_id === null) continue;
    open.order!.items.push({
      id: r.item_id,
      order_id: r.id,
      sku: r.sku,
      qty: r.qty,
      price: r.price,
    });
    out.items++;
    out.qty += r.qty;
  }
}

async function measure(mode: Mode): Promise<void> {
  await sql`select 1`; // a warm pool, as a server would have
  statements = 0;
  let wireBytes = 0;
  let serverRows = 0;
  const onBatch = (i: { rows: number; bytes: number }) => {
    wireBytes += i.bytes;
  };
  const check: Check = { orders: 0, items: 0, qty: 0 };
  const orders = sql`select * from ${sql(T.orders)} order by id`;
  const joined = sql`select o.*, i.id as item_id, i.sku, i.qty, i.price
    from ${sql(T.orders)} o left join ${sql(T.items)} i on i.order_id = o.id
    order by o.id, i.id`;
  const started = performance.now();
  if (mode === "include") {
    const include = {
      items: {
        key: "id",
        childKey: "order_id",
        many: (ids: number[]) =>
          sql`select * from ${sql(T.items)} where order_id = any(${ids}) order by order_id, id`,
      },
    };
    for await (const batch of streamBatches(sql, orders, { include, onBatch })) {
      for (const o of batch) {
        check.orders++;
        serverRows += 1 + o.items.length;
        for (const i of o.items) check.items++, check.qty += i.qty;
      }
    }
  } else if (mode === "join-stream") {
    // Ordered by parent, a JOIN can be grouped on the fly: memory stays flat, but every item row
    // carries its order's columns again.
    const open = { order: undefined as Row | undefined };
    for await (const batch of streamBatches(sql, joined, { onBatch })) {
      serverRows += batch.length;
      groupJoined(batch, check, open);
    }
  } else if (mode === "join-buffered") {
    // What an ORM's joinedload does: read the whole JOIN, then de-duplicate parents.
    const rows = await sql`select o.*, i.id as item_id, i.sku, i.qty, i.price
      from ${sql(T.orders)} o left join ${sql(T.items)} i on i.order_id = o.id
      order by o.id, i.id`;
    serverRows = rows.length;
    const open = { order: undefined as Row | undefined };
    const all: Row[] = [];
    for (const r of rows) {
      const before = open.order;
      groupJoined([r], check, open);
      if (open.order !== before) all.push(open.order!);
    }
    if (all.length !== check.orders) throw new Error("grouping lost orders");
  } else if (mode === "n-plus-1") {
    for await (const batch of streamBatches(sql, orders, { onBatch })) {
      for (const o of batch) {
        const items = await sql`select * from ${sql(T.items)} where order_id = ${o.id} order by id`;
        check.orders++;
        serverRows += 1 + items.length;
        for (const i of items) check.items++, check.qty += i.qty;
      }
    }
  } else if (mode === "m2o-include") {
    const include = {
      customer: {
        key: "customer_id",
        childKey: "id",
        one: (ids: number[]) => sql`select * from ${sql(T.customers)} where id = any(${ids})`,
      },
    };
    for await (const batch of streamBatches(sql, orders, { include, onBatch })) {
      for (const o of batch) check.orders++, serverRows++, check.qty += o.customer.id;
    }
  } else if (mode === "m2o-join") {
    const q = sql`select o.*, c.name as customer_name
      from ${sql(T.orders)} o join ${sql(T.customers)} c on c.id = o.customer_id order by o.id`;
    for await (const batch of streamBatches(sql, q, { onBatch })) {
      for (const o of batch) check.orders++, serverRows++, check.qty += o.customer_id;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({
    runtime: runtimeName(),
    mode,
    seconds: +seconds.toFixed(3),
    peakRssMb: +peakRssMb().toFixed(1),
    wireMiB: wireBytes ? +(wireBytes / 1048576).toFixed(1) : null,
    serverRows,
    statements,
    check,
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function drive(): void {
  const self = fileURLToPath(import.meta.url);
  const runtime = runtimeName();
  const args = (...rest: string[]) =>
    runtime.startsWith("deno") ? ["run", "-A", self, ...rest] : [self, ...rest];
  const sizes: Record<number, Record<string, number>> = {};
  for (const n of SIZES) {
    const child = spawnSync(process.execPath, args("setup", String(n)), { encoding: "utf8" });
    if (child.status !== 0) throw new Error(`setup failed: ${child.stderr}`);
    sizes[n] = JSON.parse(child.stdout.trim().split("\n").pop()!);
  }
  // The one-to-many modes run at both sizes (n-plus-1 only at the small one: 50,000 round trips);
  // the many-to-one ones at the small size.
  const plan: [Mode, number][] = [];
  for (const n of SIZES) {
    for (const mode of MODES) {
      if ((mode === "n-plus-1" || mode.startsWith("m2o")) && n !== SIZES[0]) continue;
      plan.push([mode, n]);
    }
  }
  const results = new Map<string, Record<string, unknown>[]>();
  // Interleave configurations run by run, so drift on a shared machine hits them alike.
  for (let run = 0; run < RUNS; run++) {
    for (const [mode, n] of plan) {
      const child = spawnSync(process.execPath, args(mode, String(n)), { encoding: "utf8" });
      if (child.status !== 0) throw new Error(`${mode} ${n} failed: ${child.stderr}`);
      const line = child.stdout.trim().split("\n").pop()!;
      const list = results.get(`${mode} ${n}`) ?? [];
      list.push(JSON.parse(line));
      results.set(`${mode} ${n}`, list);
      console.error(line);
    }
  }
  const oneToMany = ["include", "join-stream", "join-buffered", "n-plus-1"] as const;
  for (const n of SIZES) {
    const checks = new Set(
      oneToMany.filter((m) => results.has(`${m} ${n}`))
        .map((m) => JSON.stringify(results.get(`${m} ${n}`)![0]!.check)),
    );
    if (checks.size !== 1) throw new Error(`modes disagree at ${n}: ${[...checks].join(" vs ")}`);
  }
  const med = (key: string, field: string) =>
    median(results.get(key)!.map((r) => r[field] as number));
  const row = (mode: Mode, n: number, base: Mode) => {
    const key = `${mode} ${n}`;
    const first = results.get(key)![0]!;
    const s = med(key, "seconds");
    const rss = med(key, "peakRssMb");
    return `| ${mode} | ${n.toLocaleString("en")} | ${
      (first.serverRows as number).toLocaleString("en")
    } | ${first.wireMiB ?? "–"} | ${first.statements} | ${s.toFixed(2)} | ${
      (s / med(`${base} ${n}`, "seconds")).toFixed(2)
    }× | ${rss.toFixed(0)} | ${(rss / med(`${base} ${n}`, "peakRssMb")).toFixed(2)}× |`;
  };
  const head = (base: string) =>
    `| mode | orders | rows sent by the server | MiB (text) | statements | s (median) | time vs ${base} | peak RSS MB (median) | RSS vs ${base} |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|`;
  const small = sizes[SIZES[0]!]!;
  const sizeText = SIZES.map((n) =>
    `${n.toLocaleString("en")} orders / ${sizes[n]!.items!.toLocaleString("en")} items`
  ).join(", ");
  const text = `# JOIN vs include — ${runtime}

Orders of ~${small.orderWidth} bytes of text, each with 0–20 items (10 on average) of ~${small.itemWidth}
bytes; ${CUSTOMERS} customers. Two sizes: ${sizeText}. Medians of ${RUNS} runs, each run in its own
process, configurations interleaved; the machine is shared and noisy, so compare ratios.
PostgreSQL 15 on loopback, pool max 2, default 2 MiB batches. Generated by \`bench/includes.ts\`.

## One-to-many: orders → items

- **include**: \`streamBatches(orders, { include: { items: { many } } })\`: one \`= any(keys)\` query per batch.
- **join-stream**: the LEFT JOIN ordered by order, streamed and grouped on the fly (flat memory, but
  every item row repeats its order's columns).
- **join-buffered**: the same JOIN read whole, then de-duplicated (what an ORM's \`joinedload\` does).
- **n-plus-1**: stream the orders, one items query per order.

${head("include")}
${
    SIZES.flatMap((n) =>
      oneToMany.filter((m) => results.has(`${m} ${n}`)).map((m) => row(m, n, "include"))
    ).join("\n")
  }

## Many-to-one, small: orders → customer (${CUSTOMERS} customers)

${head("m2o-include")}
${row("m2o-include", SIZES[0]!, "m2o-include")}
${row("m2o-join", SIZES[0]!, "m2o-include")}

"MiB (text)" is the text-format bytes the stream counted (parents + related rows for include, the
joined rows for a JOIN; not measured for join-buffered, which reads the same rows as join-stream).
"statements" counts every statement postgres.js sent (begin/declare/fetch/commit included).
`;
  const out = fileURLToPath(new URL("./results/includes.md", import.meta.url));
  let previous = "";
  try {
    previous = readFileSync(out, "utf8");
  } catch { /* first run */ }
  // One section per runtime: keep the other runtime's.
  const others = previous.split(/(?=^# JOIN vs include — )/m)
    .filter((s) => s.trim() && !s.startsWith(`# JOIN vs include — ${runtime.split(" ")[0]}`));
  writeFileSync(out, [...others.map((s) => s.trimEnd() + "\n"), text].join("\n"));
  console.log(text);
}

const mode = process.argv[2];
if (mode === undefined) {
  await sql.end();
  drive();
} else if (mode === "setup") {
  await setup();
  const [size] = await sql`select
    (select count(*)::int from ${sql(T.items)}) as items,
    (select avg(length(o::text))::int from ${sql(T.orders)} o) as "orderWidth",
    (select avg(length(i::text))::int from ${sql(T.items)} i) as "itemWidth"`;
  console.log(JSON.stringify(size));
  await sql.end();
} else if ((MODES as readonly string[]).includes(mode)) {
  await measure(mode as Mode);
  await Promise.race([sql.end({ timeout: 1 }), new Promise((r) => setTimeout(r, 2000))]);
} else {
  throw new TypeError(`Cannot run mode ${mode}: expected one of ${MODES.join(", ")}`);
}
process.exit(0);
