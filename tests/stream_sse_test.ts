import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamSse } from "../mod.ts";
import { connect, endPool } from "./_db.ts";
import {
  assertClean,
  collect,
  createTypesTable,
  oneLine,
  rowJsonTexts,
  utf8,
} from "./formats/_oracle.ts";

/** A text/event-stream parser following the WHATWG rules (CR, LF and CRLF end lines). */
function parseEvents(text: string): { event: string; data: string }[] {
  const events: { event: string; data: string }[] = [];
  let event = "";
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (data.length > 0) events.push({ event: event || "message", data: data.join("\n") });
      event = "", data = [];
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else assert.fail(`unexpected field ${field}`);
  }
  return events;
}

test("streamSse() sends one rows event per batch (a JSON array) and an end event with the count", {
  timeout: 120_000,
}, async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  const table = await createTypesTable(admin);
  try {
    await fc.assert(
      fc.asyncProperty(table.rows, fc.integer({ min: 1, max: 4 }), async (rows, first) => {
        await table.fill(rows);
        let batches = 0;
        const text = utf8(
          (await collect(
            streamSse(sql, table.query, {
              firstBatchRows: first,
              targetBatchBytes: 500,
              onBatch: (b) => void (b.rows > 0 && batches++),
            }),
          )).bytes,
        );
        const theirs = await rowJsonTexts(sql, table.query);
        assert.ok(text.endsWith("\n\n"));
        assert.ok(!text.includes("\r"), "no CR anywhere in the stream");
        const events = parseEvents(text);
        const end = events.pop()!;
        assert.deepEqual(end, { event: "end", data: `{"rows":${rows.length}}` });
        assert.equal(events.length, batches);
        assert.ok(events.every((e) => e.event === "rows"));
        const got = events.flatMap((e) => JSON.parse(e.data));
        assert.deepEqual(got, theirs.map((t) => JSON.parse(t)));
        // Byte-level: each row's data line is its row_to_json text (CR/LF as spaces).
        assert.equal(
          events.map((e) => e.data.slice(1, -1)).join(",\n"),
          theirs.map(oneLine).join(",\n"),
        );
      }),
      { numRuns: 30 },
    );
    await assertClean(sql, app, admin);
  } finally {
    await endPool(sql).catch(() => {});
    await table.drop();
    await endPool(admin);
  }
});

test("streamSse() sends only the end event for no rows", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const text = utf8((await collect(streamSse(sql, sql`select ${1} as x where false`))).bytes);
    assert.equal(text, 'event: end\ndata: {"rows":0}\n\n');
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});

test("streamSse() frees the connection when the client cancels", async () => {
  const admin = connect().sql;
  const { sql, app } = connect();
  try {
    const reader = streamSse(sql, "select g from generate_series(1, 1000000) g").getReader();
    assert.ok((await reader.read()).value);
    await reader.cancel(new Error("closed tab"));
    await assertClean(sql, app, admin);
  } finally {
    await endPool(admin);
  }
});
