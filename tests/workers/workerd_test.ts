// sluice inside Cloudflare's runtime: tests/workers/_worker.ts (a Hono app, one postgres.js client
// per request over `cloudflare:sockets`) bundled with esbuild and served by workerd from npm,
// against the local PostgreSQL. Runs once per suite, under Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { streamCsv, streamNdjson } from "../../mod.ts";
import {
  busySessions,
  connect,
  DATABASE_URL,
  endPool,
  sessions,
  uniqueName,
  waitFor,
} from "../_db.ts";
import { RUNTIME } from "../_runtime.ts";
import { parseChunked, rawGet } from "../hono/_server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKERD = join(ROOT, "node_modules", ".bin", "workerd");
const skip = RUNTIME === "node" ? false : "the workerd tests run once per suite, under Node";
// Within the Workers limit of six outgoing connections per request: one client per request, one
// connection each, and streamLimit caps the concurrent streams of the isolate.
const LIMIT_MAX = 4;
const IDLE_MS = 2000;

interface Workerd {
  port: number;
  app: string;
  stop(): Promise<void>;
}

let bundled: string | undefined;
async function bundle(): Promise<string> {
  if (bundled !== undefined) return bundled;
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(ROOT, "tests", "workers", "_worker.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    // postgres.js ships a build for workerd (`cloudflare:sockets`) under the "workerd" condition.
    conditions: ["workerd", "worker", "import"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    write: false,
    logLevel: "error",
  });
  return (bundled = result.outputFiles[0]!.text);
}

async function startWorkerd(): Promise<Workerd> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-workerd-"));
  const app = uniqueName("sluice_workerd");
  writeFileSync(join(dir, "worker.js"), await bundle());
  const text = (s: string) => JSON.stringify(s);
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const mainWorker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2026-11-01",
  compatibilityFlags = ["nodejs_compat", "enable_request_signal"],
  bindings = [
    (name = "DATABASE_URL", text = ${text(DATABASE_URL)}),
    (name = "APP", text = ${text(app)}),
    (name = "IDLE_MS", text = ${text(String(IDLE_MS))}),
  ],
  globalOutbound = "net",
);
`,
  );
  const child: ChildProcess = spawn(
    WORKERD,
    ["serve", join(dir, "config.capnp"), "--control-fd=3"],
    {
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let control = "";
    const timer = setTimeout(() => reject(new Error(`workerd did not listen: ${stderr}`)), 30_000);
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d) => {
      control += d;
      for (const line of control.split("\n")) {
        if (!line.trim()) continue;
        const message = JSON.parse(line);
        if (message.event === "listen" && message.socket === "http") {
          clearTimeout(timer);
          resolve(message.port);
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`workerd exited with ${code}: ${stderr}`));
    });
  });
  return {
    port,
    app,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => (rmSync(dir, { recursive: true, force: true }), resolve());
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once("exit", done);
        child.kill("SIGTERM");
      }),
  };
}

const QUERY = (n: number) =>
  `select g as id, 'row ' || g as name, g * 0.5 as half from generate_series(1, ${n}) g`;

test("workerd: streamQuery() sends 100,000 rows as NDJSON and as CSV, byte for byte", {
  skip,
  timeout: 120_000,
}, async () => {
  const worker = await startWorkerd();
  const { sql } = connect();
  try {
    const n = 100_000;
    const base = `http://127.0.0.1:${worker.port}/rows?n=${n}`;
    for (const format of ["ndjson", "csv"] as const) {
      const res = await fetch(`${base}&format=${format}`);
      assert.equal(res.status, 200);
      const body = await res.text();
      // The same query through sluice on this runtime, with no Worker in between.
      const direct = format === "ndjson"
        ? await new Response(streamNdjson(sql, sql`${sql.unsafe(QUERY(n))}`)).text()
        : await new Response(streamCsv(sql, sql`${sql.unsafe(QUERY(n))}`)).text();
      const lines = body.trimEnd().split("\n");
      assert.equal(lines.length, format === "csv" ? n + 1 : n);
      assert.equal(body.length, direct.length);
      assert.ok(body === direct, `${format} body differs from a direct stream`);
    }
    const released = await waitFor(
      async () => (await sessions(sql, worker.app)).length === 0,
      10_000,
    );
    assert.ok(released, "the per-request clients were not ended");
  } finally {
    await worker.stop();
    await endPool(sql);
  }
});

test("workerd: a client that disconnects mid-stream frees the connection within the idle timeout", {
  skip,
  timeout: 120_000,
}, async () => {
  const worker = await startWorkerd();
  const { sql: admin } = connect();
  try {
    const ex = rawGet(worker.port, "/rows?n=20000000");
    await ex.received(256 * 1024);
    assert.equal((await busySessions(admin, worker.app)).length, 1, "the stream holds one session");
    const t0 = performance.now();
    ex.socket.destroy();
    const free = await waitFor(
      async () => (await busySessions(admin, worker.app)).length === 0,
      IDLE_MS + 5000,
    );
    const ms = performance.now() - t0;
    const closed = await waitFor(
      async () => (await sessions(admin, worker.app)).length === 0,
      5000,
    );
    console.log(
      `workerd: disconnect → connection free after ${
        ms.toFixed(0)
      } ms (idle timeout ${IDLE_MS} ms), ` +
        `client ${closed ? "ended" : "still connected"}`,
    );
    assert.ok(free, `the session was still busy ${ms.toFixed(0)} ms after the disconnect`);
    assert.ok(ms < IDLE_MS + 3000, `freed after ${ms.toFixed(0)} ms`);
    assert.ok(closed, "the per-request client was not ended after the disconnect");
  } finally {
    await worker.stop();
    await endPool(admin);
  }
});

test(
  `workerd: streamLimit({ max: ${LIMIT_MAX} }) with 12 concurrent requests: 4 stream, 8 get 503`,
  {
    skip,
    timeout: 120_000,
  },
  async () => {
    const worker = await startWorkerd();
    const { sql: admin } = connect();
    try {
      const n = 100_000;
      let peak = 0;
      let polling = true;
      const poll = (async () => {
        while (polling) {
          peak = Math.max(peak, (await sessions(admin, worker.app)).length);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const results = await Promise.all(Array.from({ length: 12 }, async () => {
        const ex = rawGet(worker.port, `/limited/rows?n=${n}`);
        await ex.closed;
        const res = parseChunked(ex.data());
        return { ...res, lines: res.body.reduce((k, b) => k + (b === 10 ? 1 : 0), 0) };
      }));
      polling = false;
      await poll;
      const ok = results.filter((r) => r.status === 200);
      const busy = results.filter((r) => r.status === 503);
      assert.equal(ok.length, LIMIT_MAX, `statuses ${results.map((r) => r.status).join(",")}`);
      assert.equal(busy.length, 12 - LIMIT_MAX);
      for (const r of ok) assert.equal(r.lines, n), assert.ok(r.complete);
      for (const r of busy) {
        assert.equal(r.headers["retry-after"], "2");
        assert.equal(JSON.parse(r.body.toString()).code, "POOL_BUSY");
      }
      assert.ok(peak <= LIMIT_MAX, `${peak} database sessions at once`);
      assert.ok(
        await waitFor(async () => (await sessions(admin, worker.app)).length === 0, 10_000),
      );
    } finally {
      await worker.stop();
      await endPool(admin);
    }
  },
);
