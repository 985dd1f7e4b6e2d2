import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CsvEncoder, encodeCsvValue } from "../../lib/formats/csv.ts";
import { ChunkWriter } from "../../lib/formats/_chunk_writer.ts";
import { concat, utf8 } from "./_oracle.ts";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const field = (s: string | null, onlyColumn = false): string =>
  utf8(encodeCsvValue(s === null ? null : bytes(s), { onlyColumn }));

test("encodeCsvValue() follows COPY's quoting rule", () => {
  assert.equal(field(null), "");
  assert.equal(field(""), '""');
  assert.equal(field("plain text"), "plain text");
  assert.equal(field(" padded "), " padded ");
  assert.equal(field("a,b"), '"a,b"');
  assert.equal(field('say "hi"'), '"say ""hi"""');
  assert.equal(field("a\nb"), '"a\nb"');
  assert.equal(field("a\rb"), '"a\rb"');
  assert.equal(field("\\N"), "\\N");
  assert.equal(field("\\."), "\\.");
  assert.equal(field("\\.", true), '"\\."');
  assert.equal(field("é€😀"), "é€😀");
});

// An RFC 4180 field reader: what any CSV parser does with one field.
function readField(text: string): string {
  if (!text.startsWith('"')) return text;
  assert.ok(text.endsWith('"') && text.length >= 2);
  const inner = text.slice(1, -1);
  assert.ok(!/(^|[^"])"("")*($|[^"])/.test(inner.replace(/""/g, "")), "a lone quote");
  return inner.replace(/""/g, '"');
}

test("encodeCsvValue() round-trips any text and quotes only when needed", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 100 }), fc.nat(400), (t, pad) => {
      const s = "x".repeat(pad) + t;
      const out = field(s);
      assert.equal(readField(out), s);
      assert.equal(out.startsWith('"'), s === "" || /[,"\r\n]/.test(s));
    }),
  );
});

test("CsvEncoder writes values of long and short rows across chunk boundaries", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.array(fc.option(fc.string({ maxLength: 90 }), { nil: null }), {
          minLength: 2,
          maxLength: 2,
        }),
        {
          maxLength: 20,
        },
      ),
      fc.integer({ min: 1, max: 50 }),
      (rows, size) => {
        const encoder = new CsvEncoder([{ name: "a", type: 25 }, { name: "b", type: 25 }]);
        const w = new ChunkWriter(size);
        encoder.writeRows(w, rows.map((r) => r.map((v) => v === null ? null : bytes(v))));
        const expected = rows.map((r) => r.map((v) => field(v)).join(",") + "\n").join("");
        assert.equal(utf8(concat(w.take())), expected);
      },
    ),
  );
});
