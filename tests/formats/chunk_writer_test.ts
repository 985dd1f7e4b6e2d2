import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CHUNK_BYTES, ChunkWriter } from "../../lib/formats/_chunk_writer.ts";
import { concat } from "./_oracle.ts";

test("ChunkWriter hands out every byte in order, in chunks of at most its size", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.array(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.nat(255)), { maxLength: 30 }),
        {
          maxLength: 5,
        },
      ),
      (size, batches) => {
        const w = new ChunkWriter(size);
        const expected: number[] = [];
        const chunks: Uint8Array[] = [];
        for (const batch of batches) {
          for (const item of batch) {
            if (typeof item === "number") w.writeByte(item), expected.push(item);
            else w.write(item), expected.push(...item);
          }
          const taken = w.take();
          // Every chunk but the batch's last is full: no tiny chunks from many small writes.
          taken.slice(0, -1).forEach((c) => assert.equal(c.length, size));
          chunks.push(...taken);
        }
        assert.ok(chunks.every((c) => c.length > 0 && c.length <= size));
        assert.deepEqual([...concat(chunks)], expected);
      },
    ),
  );
});

test("ChunkWriter chunks own their bytes: later writes never change a chunk already taken", () => {
  const w = new ChunkWriter(8);
  w.write(new Uint8Array([1, 2, 3]));
  const [first] = w.take();
  w.write(new Uint8Array([9, 9, 9, 9, 9]));
  w.take();
  assert.deepEqual([...first!], [1, 2, 3]);
  assert.equal(first!.byteLength, first!.buffer.byteLength);
});

test("ChunkWriter defaults to 64 KiB chunks", () => {
  const w = new ChunkWriter();
  w.write(new Uint8Array(200_000));
  assert.deepEqual(w.take().map((c) => c.length), [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 3392]);
});

test("ChunkWriter in oneLine mode keeps only newline() line breaks of text, across chunk boundaries", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.array(
        fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("\r", "\n", "\r\n")))
          .map((parts) => parts.join("")),
        { maxLength: 20 },
      ),
      (size, lines) => {
        const w = new ChunkWriter(size, { oneLine: true });
        const chunks: Uint8Array[] = [];
        lines.forEach((line, i) => {
          w.writeText(new TextEncoder().encode(line));
          w.newline();
          if (i % 3 === 0) chunks.push(...w.take());
        });
        chunks.push(...w.take());
        const expected = lines.map((l) => l.replace(/[\r\n]/g, " ") + "\n").join("");
        assert.equal(new TextDecoder().decode(concat(chunks)), expected);
      },
    ),
  );
});
