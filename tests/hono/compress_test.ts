// Hono's compress() with sluice's content-type filter: NDJSON, CSV and JSON are gzipped with
// backpressure and disconnects intact; event streams are not. Served by the runtime's own server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { gunzipSync } from "node:zlib";
import { Hono } from "hono";
import { compress } from "hono/compress";
import { compressibleType, streamQuery } from "../../lib/hono/mod.ts";
import type { StreamFormat } from "../../lib/hono/mod.ts";
import { busySessions, connect, endPool, waitFor } from "../_db.ts";
import { serve } from "./_servers/listen.ts";

function appWith(sql: ReturnType<typeof connect>["sql"]) {
  const app = new Hono();
  app.use(compress({ contentTypeFilter: compressibleType }));
  app.get("/export", (c) =>
    streamQuery(
      c,
      sql,
      `select g as id, repeat('x', 50) as pad from generate_series(1, ${
        Number(c.req.query("n"))
      }) g`,
      { format: c.req.query("format") as StreamFormat },
    ));
  return app;
}

test("compressibleType() with compress() gzips NDJSON, CSV and JSON exactly, and leaves SSE alone", async () => {
  const { sql } = connect();
  const server = await serve(appWith(sql).fetch);
  try {
    for (const format of ["ndjson", "csv", "json", "sse"] as const) {
      const url = `http://127.0.0.1:${server.port}/export?n=20000&format=${format}`;
      const plain = await (await fetch(url)).arrayBuffer();
      const res = await fetch(
        url,
        { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit,
      );
      const raw = new Uint8Array(await res.arrayBuffer());
      if (format === "sse") {
        assert.equal(res.headers.get("content-encoding"), null);
        continue;
      }
      assert.equal(res.headers.get("content-encoding"), "gzip", format);
      // Runtimes may already have decompressed the body; either way the bytes must match.
      const body = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      assert.deepEqual(new Uint8Array(body), new Uint8Array(plain), format);
    }
    assert.equal(compressibleType("application/x-ndjson; charset=utf-8"), true);
    assert.equal(compressibleType("text/event-stream; charset=utf-8"), false);
  } finally {
    await server.stop();
    await endPool(sql);
  }
});

test("a client that disconnects from a gzipped NDJSON export frees the connection", async () => {
  const admin = connect().sql;
  const { sql, app: name } = connect();
  const server = await serve(appWith(sql).fetch);
  try {
    for (const early of [true, false]) {
      const socket = netConnect({ host: "127.0.0.1", port: server.port });
      socket.on("error", () => {});
      let received = 0;
      const got = new Promise<void>((resolve) => {
        socket.on("data", (d: Uint8Array) => {
          received += d.length;
          if (received > (early ? 1 : 200_000)) resolve();
        });
        socket.on("close", () => resolve());
      });
      socket.write(
        "GET /export?n=5000000&format=ndjson HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
      );
      await got;
      // Now stop reading and go: the response is far from done (5,000,000 rows).
      socket.destroy();
      const clean = await waitFor(async () => (await busySessions(admin, name)).length === 0, 5000);
      assert.ok(clean, `sessions left busy: ${(await busySessions(admin, name)).join("; ")}`);
    }
  } finally {
    await server.stop();
    await endPool(sql);
    await endPool(admin);
  }
});
