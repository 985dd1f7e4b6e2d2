import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { connect as netConnect } from "node:net";
import type { Socket } from "node:net";
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
    assert.match(problem.detail, /line 3 of the body, column "amount"/);

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

test("ingestRequest() tells the client line, column and a fixed description; onError gets the full error", async () => {
  const { sql, app: appName } = connect();
  const admin = connect().sql;
  const table = await createTable(admin);
  const audit = `${table}_audit`;
  try {
    // A trigger whose failing statement (with its SQL) lands in PostgreSQL's `where`.
    await admin.unsafe(`create table ${audit} (msg text not null)`);
    await admin.unsafe(`create function ${table}_audit() returns trigger language plpgsql as $$
      begin
        if new.v = 'x' then insert into ${audit} (msg) values ((select 'top-secret' where false)); end if;
        return new;
      end $$`);
    await admin.unsafe(`create trigger audit before insert on ${table}
      for each row execute function ${table}_audit()`);
    const errors: unknown[] = [];
    const app = new Hono();
    app.post("/in", (c) => ingestRequest(c, sql, table, { onError: (e) => errors.push(e) }));
    const post = async (type: string, body: string) => {
      const res = await app.request("/in", {
        method: "POST",
        body,
        headers: { "content-type": type },
      });
      const text = await res.text();
      for (const secret of [table, "public", "top-secret", "insert into", "pkey", "audit"]) {
        assert.ok(!text.includes(secret), `the response tells ${secret}: ${text}`);
      }
      return { status: res.status, problem: JSON.parse(text) };
    };

    let { status, problem } = await post("text/csv", "id,v\n1,a\n2,x\n");
    assert.equal(status, 400);
    assert.equal(problem.code, "23502");
    assert.equal(
      problem.detail,
      "Cannot store line 3 of the body: a column that must have a value is null.",
    );
    assert.match(String((errors.at(-1) as { where?: string }).where), /insert into/);

    ({ status, problem } = await post("text/csv", "id,amount\n6,1\n7,abc\n"));
    assert.equal(status, 400);
    assert.equal(
      problem.detail,
      `Cannot store line 3 of the body, column "amount": a value is not valid for its column's type.`,
    );

    await admin.unsafe(`insert into ${table} (id) values (1)`);
    ({ status, problem } = await post("application/x-ndjson", `{"id": 1}\n`));
    assert.equal(status, 409);
    assert.equal(problem.code, "23505");
    assert.match((errors.at(-1) as Error).message, /pkey/);

    ({ status, problem } = await post("application/x-ndjson", `{"id": 5, "nope": 1}\n`));
    assert.equal(status, 400);
    assert.equal(problem.code, "BAD_INPUT");
    assert.match(problem.detail, /line 1 of the NDJSON body, column "nope": unknown column/);
    assert.equal(errors.length, 4);
    assert.ok(await waitFor(async () => (await busySessions(admin, appName)).length === 0, 2000));
    await endPool(sql);
  } finally {
    await admin.unsafe(`drop table if exists ${table}, ${audit}`);
    await admin.unsafe(`drop function if exists ${table}_audit()`);
    await endPool(admin);
  }
});

const SERVER = fileURLToPath(new URL("./_ingest_server.ts", import.meta.url));

/** The test server in a child process of the runtime under test, with its output. */
interface Server {
  port: number;
  app: string;
  child: ChildProcess;
  out: () => string;
  err: () => string;
  stop: () => Promise<void>;
}

async function startServer(
  options: Record<string, unknown> = {},
  poolMax = 2,
): Promise<Server> {
  const app = uniqueName("sluice_ingest_srv");
  const child = spawn(
    process.execPath,
    scriptArgs(SERVER),
    {
      env: {
        ...process.env,
        DATABASE_URL,
        SLUICE_APP: app,
        SLUICE_INGEST_OPTIONS: JSON.stringify(options),
        SLUICE_POOL_MAX: String(poolMax),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.once("exit", r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await exited;
  };
  if (!await waitFor(() => Promise.resolve(out.includes("\n")), 20_000)) {
    await stop();
    assert.fail(`server did not start: ${err}`);
  }
  const port = JSON.parse(out.split("\n")[0]!).port as number;
  return { port, app, child, out: () => out, err: () => err, stop };
}

/** A raw HTTP/1.1 chunked upload on a socket, so the test decides when it stalls or vanishes. */
async function openUpload(
  port: number,
  table: string,
): Promise<{ socket: Socket; send: (text: string) => void; received: () => string }> {
  const socket = netConnect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) =>
    socket.once("connect", resolve).once("error", reject)
  );
  socket.on("error", () => {});
  let received = "";
  socket.on("data", (d) => (received += d));
  socket.write(
    `POST /ingest/${table} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n` +
      `Transfer-Encoding: chunked\r\n\r\n`,
  );
  const send = (text: string) => {
    const size = new TextEncoder().encode(text).length;
    socket.write(`${size.toString(16)}\r\n${text}\r\n`);
  };
  return { socket, send, received: () => received };
}

let nextId = 0;
function rows(n: number): string {
  let text = "";
  for (let i = 0; i < n; i++) {
    text += `{"id": ${++nextId}, "v": "row ${nextId}", "amount": ${nextId}}\n`;
  }
  return text;
}

/** Sends rows until the server's COPY is running. */
async function uploadUntilCopying(admin: Sql, server: Server, send: (t: string) => void) {
  const copying = async () =>
    (await admin`select 1 from pg_stat_activity where application_name = ${server.app}
      and query ilike 'copy%' and state = 'active'`).length > 0;
  const deadline = Date.now() + 15_000;
  while (!(await copying())) {
    assert.ok(
      Date.now() < deadline,
      `the server never started the COPY: ${server.out()} ${server.err()}`,
    );
    send(rows(500));
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Whether the server's pool serves `select 1` within a second. */
async function pings(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200 && (await res.json()).one === 1;
  } catch {
    return false;
  }
}

test("ingestRequest() rolls back when the client disconnects mid-upload (real socket)", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const table = await createTable(admin);
  const server = await startServer();
  try {
    const { socket, send } = await openUpload(server.port, table);
    // Upload until the server is inside the COPY, then keep going a little and vanish.
    await uploadUntilCopying(admin, server, send);
    for (let i = 0; i < 20; i++) send(rows(500));
    socket.destroy();

    const settled = await waitFor(
      async () => (await sessions(admin, server.app)).every((s) => s.state === "idle"),
      10_000,
    );
    assert.ok(
      settled,
      `server sessions still busy: ${(await busySessions(admin, server.app)).join("; ")}`,
    );
    assert.equal(await count(admin, table), 0, "rows of the aborted upload were committed");
    assert.ok(!server.out().includes('"status":200'), `the aborted upload was answered 200`);

    // The server (and its pool) still work.
    const res = await fetch(`http://127.0.0.1:${server.port}/ingest/${table}`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: "id,v\n1,a\n2,b\n",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { rows: 2 });
    assert.equal(await count(admin, table), 2);
  } finally {
    await server.stop();
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingestRequest() survives a backend killed while the client stalls, then the client leaving", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const table = await createTable(admin);
  // A pool of one: every request after a kill gets the killed connection, reconnected.
  const server = await startServer({}, 1);
  try {
    for (let round = 0; round < 4; round++) {
      const { socket, send } = await openUpload(server.port, table);
      await uploadUntilCopying(admin, server, send);
      // The client stalls; its backend is killed; then the client goes away.
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${server.app} and query ilike 'copy%'`;
      await new Promise((r) => setTimeout(r, 300));
      socket.destroy();
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(server.child.exitCode, null, `the server died: ${server.err()}`);
      // The killed upload's handler returned (a hung one would hold a streamLimit slot forever).
      const answered = () => server.out().split("\n").filter((l) => l.includes('"status"')).length;
      assert.ok(
        await waitFor(() => Promise.resolve(answered() === 2 * round + 1), 1000),
        `round ${round}: the killed upload was never answered: ${server.out()}`,
      );
      // A new upload gets a connection (the one killed, reconnected) and commits.
      const res = await fetch(`http://127.0.0.1:${server.port}/ingest/${table}`, {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: `id,v\n${-2 * round - 1},a\n${-2 * round - 2},b\n`,
        signal: AbortSignal.timeout(2000),
      }).catch((e) => {
        throw new Error(`round ${round}: ${e}: ${server.out()} ${server.err()}`);
      });
      const text = await res.text();
      assert.equal(res.status, 200, `round ${round}: ${text}`);
      assert.ok(await pings(server.port), `round ${round}: the pool no longer serves select 1`);
    }
    assert.equal(await count(admin, table), 8, "rows of the killed uploads were committed");
    assert.ok(
      await waitFor(async () => (await busySessions(admin, server.app)).length === 0, 3000),
      `server sessions still busy: ${(await busySessions(admin, server.app)).join("; ")}`,
    );
    assert.doesNotMatch(server.err(), /TypeError|Uncaught/);
  } finally {
    await server.stop();
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingestRequest() answers a stalled upload 408 after idleTimeoutMs and frees its connection", {
  timeout: 60_000,
}, async () => {
  const admin = connect().sql;
  const table = await createTable(admin);
  const server = await startServer({ idleTimeoutMs: 500 });
  try {
    const { socket, send, received } = await openUpload(server.port, table);
    await uploadUntilCopying(admin, server, send);
    const stalled = performance.now();
    // The client stalls, keeping its socket open.
    assert.ok(
      await waitFor(() => Promise.resolve(received().includes("\r\n\r\n{")), 5000),
      `no response to the stalled upload: ${server.out()} ${server.err()}`,
    );
    const took = performance.now() - stalled;
    assert.match(received(), /^HTTP\/1\.1 408/);
    assert.match(received(), /"code":"IDLE_TIMEOUT"/);
    assert.ok(took < 2500, `answered after ${took} ms`);
    assert.ok(
      await waitFor(async () => (await busySessions(admin, server.app)).length === 0, 1000),
      `server sessions still busy: ${(await busySessions(admin, server.app)).join("; ")}`,
    );
    socket.destroy();
    assert.equal(await count(admin, table), 0);
  } finally {
    await server.stop();
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});

test("ingestRequest() answers 413 for a line longer than maxLineBytes", async () => {
  const { sql } = connect();
  const admin = connect().sql;
  const table = await createTable(admin);
  try {
    const app = new Hono();
    app.post("/in", (c) => ingestRequest(c, sql, table, { maxLineBytes: 1024 }));
    for (
      const [type, body] of [
        ["application/x-ndjson", `{"id": 1}\n{"id": 2, "v": "${"x".repeat(2000)}"}\n`],
        ["text/csv", `id,v\n1,${"x".repeat(2000)}\n`],
      ]
    ) {
      const res = await app.request("/in", {
        method: "POST",
        body,
        headers: { "content-type": type! },
      });
      assert.equal(res.status, 413);
      const problem = await res.json();
      assert.equal(problem.code, "LINE_TOO_LONG");
      assert.match(
        problem.detail,
        /line 2 of the (NDJSON|CSV) body: it is longer than maxLineBytes \(1024 bytes\)/,
      );
    }
    assert.equal(await count(admin, table), 0);
    await endPool(sql);
  } finally {
    await admin.unsafe(`drop table if exists ${table}`);
    await endPool(admin);
  }
});
