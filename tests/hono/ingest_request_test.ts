import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connect as netConnect } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { ingestRequest } from "../../lib/hono/mod.ts";
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
import { scriptArgs } from "../_runtime.ts";

async function createTable(admin: Sql): Promise<string> {
  const name = uniqueName("ingreq");
  await admin.unsafe(`create table ${name} (id int primary key, v text, amount numeric)`);
  return name;
}

async function count(sql: Sql, table: string): Promise<number> {
  const [row] = await sql.unsafe(`select count(*)::int as n from ${table}`);
  return row!.n;
}

test("ingestRequest() answers 200 { rows }, 400/409/415 problems naming line and column", async () => {
  const { sql, app: appName } = connect();
  const admin = connect().sql;
  const table = await createTable(admin);
  try {
    const app = new Hono();
    app.post("/in", (c) => ingestRequest(c, sql, table));
    app.post(
      "/upsert",
      (c) =>
        ingestRequest(c, sql, table, { format: "csv", onConflict: { key: ["id"], update: "all" } }),
    );
    const post = (path: string, type: string | undefined, body: string) =>
      app.request(path, { method: "POST", body, headers: type ? { "content-type": type } : {} });

    let res = await post("/in", "application/x-ndjson", `{"id": 1, "v": "a"}\n{"id": 2}\n`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { rows: 2 });

    res = await post("/in", "text/csv; charset=utf-8", `id,v,amount\n3,"b, c",1.5\n`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { rows: 1 });

    res = await post("/in", "application/x-ndjson", `{"id": 4, "v": "x"}\n{"id": 5, "v": }\n`);
    assert.equal(res.status, 400);
    assert.match(res.headers.get("content-type")!, /application\/problem\+json/);
    let problem = await res.json();
    assert.equal(problem.code, "BAD_INPUT");
    assert.match(problem.detail, /line 2 of the NDJSON body, column "v"/);

    res = await post("/in", "text/csv", `id,amount\n6,1\n7,abc\n`);
    assert.equal(res.status, 400);
    problem = await res.json();
    assert.equal(problem.code, "22P02");
    assert.match(problem.detail, /line 3, column amount/);

    res = await post("/in", "text/csv", `id\n8\n1\n`);
    assert.equal(res.status, 409);
    assert.equal((await res.json()).code, "23505");

    res = await post("/in", "application/json", `{"id": 9}`);
    assert.equal(res.status, 415);

    res = await post("/upsert", undefined, `id,v\n1,z\n10,y\n`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { rows: 2 });

    const rows = await admin.unsafe(`select id, v from ${table} order by id`);
    assert.deepEqual(rows.map((r) => `${r.id}:${r.v}`), ["1:z", "2:null", "3:b, c", "10:y"]);
    assert.ok(await waitFor(async () => (await busySessions(admin, appName)).length === 0, 2000));
    await endPool(sql);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

const SERVER = fileURLToPath(new URL("./_ingest_server.ts", import.meta.url));

test("ingestRequest() rolls back when the client disconnects mid-upload (real socket)", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const table = await createTable(admin);
  const app = uniqueName("sluice_ingest_srv");
  const child = spawn(
    process.execPath,
    scriptArgs(SERVER),
    {
      env: { ...process.env, DATABASE_URL, SLUICE_APP: app },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  try {
    assert.ok(
      await waitFor(() => Promise.resolve(out.includes("\n")), 20_000),
      `server did not start: ${err}`,
    );
    const port = JSON.parse(out.split("\n")[0]!).port as number;

    const socket = netConnect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) =>
      socket.once("connect", resolve).once("error", reject)
    );
    socket.on("error", () => {});
    socket.write(
      `POST /ingest/${table} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n`,
    );
    let id = 0;
    const chunk = () => {
      let text = "";
      for (let i = 0; i < 500; i++) text += `{"id": ${++id}, "v": "row ${id}", "amount": ${id}}\n`;
      const size = new TextEncoder().encode(text).length;
      return `${size.toString(16)}\r\n${text}\r\n`;
    };
    // Upload until the server is inside the COPY, then keep going a little and vanish.
    const copying = async () =>
      (await admin`select 1 from pg_stat_activity where application_name = ${app}
        and query ilike 'copy%' and state = 'active'`).length > 0;
    const deadline = Date.now() + 15_000;
    while (!(await copying())) {
      assert.ok(Date.now() < deadline, `the server never started the COPY: ${out} ${err}`);
      socket.write(chunk());
      await new Promise((r) => setTimeout(r, 5));
    }
    for (let i = 0; i < 20; i++) socket.write(chunk());
    socket.destroy();

    const settled = await waitFor(
      async () => (await sessions(admin, app)).every((s) => s.state === "idle"),
      10_000,
    );
    assert.ok(
      settled,
      `server sessions still busy: ${(await busySessions(admin, app)).join("; ")}`,
    );
    assert.equal(await count(admin, table), 0, "rows of the aborted upload were committed");
    assert.ok(!out.includes('"status":200'), `the aborted upload was answered 200: ${out}`);

    // The server (and its pool) still work.
    const res = await fetch(`http://127.0.0.1:${port}/ingest/${table}`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: "id,v\n1,a\n2,b\n",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { rows: 2 });
    assert.equal(await count(admin, table), 2);
  } finally {
    child.kill();
    await new Promise((r) => child.once("exit", r));
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});
