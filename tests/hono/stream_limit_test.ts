// streamLimit() in-process: argument checks and slot accounting (no database needed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { streamLimit } from "../../lib/hono/mod.ts";

test("streamLimit() rejects a bad max or retryAfterSeconds", () => {
  assert.throws(() => streamLimit({ max: 0 }), RangeError);
  assert.throws(
    () => streamLimit({ max: 1.5 }),
    /Cannot use max as a stream limit: current value is 1.5/,
  );
  assert.throws(() => streamLimit({ max: 2, retryAfterSeconds: -1 }), RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => streamLimit(null as any), TypeError);
});

test("streamLimit() holds a slot until the body ends, fails or is cancelled", async () => {
  const app = new Hono();
  app.use("*", streamLimit({ max: 1, retryAfterSeconds: 7 }));
  let fail = false;
  app.get("/body", () => {
    let i = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (fail && i === 1) return c.error(new Error("boom"));
          if (i++ < 3) c.enqueue(new Uint8Array([65]));
          else c.close();
        },
      }, { highWaterMark: 0 }),
    );
  });
  app.get("/throw", () => {
    throw new Error("handler failed");
  });
  app.onError((_e, c) => c.text("error", 500));

  // Ends: the slot is held while the body is unread, and freed once it is read to the end.
  const first = await app.request("/body");
  const second = await app.request("/body");
  assert.equal(second.status, 503);
  assert.equal(second.headers.get("retry-after"), "7");
  assert.equal(second.headers.get("content-type"), "application/problem+json; charset=utf-8");
  assert.equal((await second.json()).code, "POOL_BUSY");
  assert.equal(await first.text(), "AAA");
  // Cancelled.
  const third = await app.request("/body");
  assert.equal((await app.request("/body")).status, 503);
  await third.body!.cancel();
  // Errored.
  fail = true;
  const fourth = await app.request("/body");
  assert.equal(fourth.status, 200);
  await assert.rejects(fourth.text());
  fail = false;
  // A handler that throws (its error response is sent), and HEAD (whose body Hono drops).
  const thrown = await app.request("/throw");
  assert.equal(thrown.status, 500);
  assert.equal(await thrown.text(), "error");
  assert.equal((await app.request("/body", { method: "HEAD" })).status, 200);
  assert.equal(await (await app.request("/body")).text(), "AAA");
});
