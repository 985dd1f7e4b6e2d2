import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createFailureMark, quoteParity } from "../../lib/hono/_failure_mark.ts";
import { looksCompleteCsv, looksCompleteNdjson } from "./_complete.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

test("quoteParity() counts quotes at any alignment and length", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }).map((a) => a.map((b) => (b % 4 === 0 ? 0x22 : b))),
      fc.nat(3),
      (bytes, offset) => {
        const buffer = new Uint8Array(bytes.length + offset);
        buffer.set(bytes, offset);
        const chunk = buffer.subarray(offset);
        const count = chunk.filter((b) => b === 0x22).length;
        assert.equal(quoteParity(chunk), count & 1);
      },
    ),
    { numRuns: 500 },
  );
});

// Fields as PostgreSQL's CSV writes them: quoted when they hold a separator, quote or line break.
function csvLine(fields: string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(",") +
    "\n";
}

/** A body cut anywhere and sent in chunks cut anywhere, then the format's failure mark. */
function failedBody(format: "csv" | "ndjson", text: string, cut: number, splits: number[]) {
  const bytes = encoder.encode(text).subarray(0, cut);
  const mark = createFailureMark(format);
  let at = 0;
  for (const split of [...splits.map((s) => s % (bytes.length + 1)).sort((a, b) => a - b)]) {
    mark.see(bytes.subarray(at, Math.max(at, split)));
    at = Math.max(at, split);
  }
  mark.see(bytes.subarray(at));
  const tail = mark.end("57P01");
  assert.ok(tail !== undefined);
  return decoder.decode(bytes) + decoder.decode(tail);
}

test("createFailureMark(): a CSV body cut anywhere, in or out of a quoted field, never reads as complete", () => {
  const field = fc.string({
    unit: fc.constantFrom("a", "b", '"', ",", "\n", "é", " "),
    maxLength: 8,
  });
  fc.assert(
    fc.property(
      fc.array(fc.array(field, { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 12 }),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 4 }),
      (rows, cut, splits) => {
        const text = csvLine(["id", "note", "more"]) + rows.map(csvLine).join("");
        const at = cut % (encoder.encode(text).length + 1);
        const body = failedBody("csv", text, at, splits);
        assert.equal(looksCompleteCsv(text), true);
        assert.equal(looksCompleteCsv(body), false, JSON.stringify(body));
      },
    ),
    { numRuns: 500 },
  );
});

test("createFailureMark(): an NDJSON body cut anywhere never reads as complete, even to a reader that drops a cut-off last line", () => {
  fc.assert(
    fc.property(
      fc.array(fc.jsonValue(), { minLength: 1, maxLength: 10 }),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 4 }),
      (values, cut, splits) => {
        const text = values.map((v) => JSON.stringify(v) + "\n").join("");
        const body = failedBody("ndjson", text, cut % (encoder.encode(text).length + 1), splits);
        assert.equal(looksCompleteNdjson(body), false, JSON.stringify(body));
      },
    ),
    { numRuns: 300 },
  );
});

test("createFailureMark(): a JSON array never parses after its mark; SSE has none", () => {
  const mark = createFailureMark("json");
  for (const sent of ['[{"id":1},', '[{"id":1}', '[{"id":"a', "["]) {
    assert.throws(() => JSON.parse(sent + decoder.decode(mark.end(undefined))));
  }
  assert.equal(createFailureMark("sse").end("57P01"), undefined);
  // Only codes that are SQLSTATEs or sluice codes are named.
  const text = decoder.decode(createFailureMark("ndjson").end("a\nb"));
  assert.equal(text.split("\n").length, 2);
});
