// Encoding speed of the two Arrow libraries sluice could write with, on the same prebuilt column
// buffers (what sluice's column builders produce): 100 record batches of 10,000 rows × (int64,
// int32, utf8 of ~50 bytes, timestamp µs), written as one IPC stream. Bundle sizes are measured
// separately (bun build --minify of the imports each needs; see bench/RESULTS.md).
//
//   <deno run -A | bun> bench/arrow_libs.ts
import process from "node:process";
import * as fl from "@uwdata/flechette";
import * as aa from "apache-arrow";

const ROWS = 10_000;
const BATCHES = 100;
const ids = new BigInt64Array(ROWS).map((_, i) => BigInt(i));
const ints = new Int32Array(ROWS).map((_, i) => i * 7);
const times = new BigInt64Array(ROWS).map((_, i) => 1_700_000_000_000_000n + BigInt(i));
const enc = new TextEncoder();
const texts = Array.from(
  { length: ROWS },
  (_, i) => enc.encode(`some text of forty to fifty nine characters ${i}`),
);
const offsets = new Int32Array(ROWS + 1);
for (let i = 0; i < ROWS; i++) offsets[i + 1] = offsets[i]! + texts[i]!.length;
const data = new Uint8Array(offsets[ROWS]!);
for (let i = 0; i < ROWS; i++) data.set(texts[i]!, offsets[i]!);
const EMPTY = new Uint8Array(0);

function flechette(): number {
  const types = [fl.int64(), fl.int32(), fl.utf8(), fl.timestamp(2, "UTC")];
  const schema = {
    version: 4,
    endianness: 0,
    fields: ["id", "n", "s", "t"].map((name, i) => fl.field(name, types[i]!)),
    metadata: null,
  } as unknown as fl.Schema;
  let bytes = 0;
  for (let b = 0; b < BATCHES; b++) {
    const batches = [
      { values: ids },
      { values: ints },
      { values: data, offsets },
      { values: times },
    ].map((d, i) =>
      new fl.Column([
        new fl.Batch(
          { ...d, type: types[i]!, length: ROWS, nullCount: 0, validity: EMPTY } as never,
        ),
      ])
    );
    bytes += fl.tableToIPC(new fl.Table(schema, batches), { format: "stream" })!.length;
  }
  return bytes;
}

function apacheArrow(): number {
  const types = [new aa.Int64(), new aa.Int32(), new aa.Utf8(), new aa.TimestampMicrosecond("UTC")];
  const fields = ["id", "n", "s", "t"].map((name, i) => new aa.Field(name, types[i]!, true));
  const schema = new aa.Schema(fields);
  const writer = new aa.RecordBatchStreamWriter();
  let bytes = 0;
  writer.reset();
  for (let b = 0; b < BATCHES; b++) {
    const children = [
      aa.makeData({ type: types[0] as aa.Int64, length: ROWS, nullCount: 0, data: ids }),
      aa.makeData({ type: types[1] as aa.Int32, length: ROWS, nullCount: 0, data: ints }),
      aa.makeData({
        type: types[2] as aa.Utf8,
        length: ROWS,
        nullCount: 0,
        data,
        valueOffsets: offsets,
      }),
      aa.makeData({
        type: types[3] as aa.TimestampMicrosecond,
        length: ROWS,
        nullCount: 0,
        data: times,
      }),
    ];
    const struct = aa.makeData({
      type: new aa.Struct(fields),
      length: ROWS,
      nullCount: 0,
      children,
    });
    writer.write(new aa.RecordBatch(schema, struct));
  }
  writer.finish();
  bytes += writer.toUint8Array(true).length;
  return bytes;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const result: Record<string, { ms: number; bytes: number }> = {};
for (
  const [name, run] of [["@uwdata/flechette", flechette], ["apache-arrow", apacheArrow]] as const
) {
  const times: number[] = [];
  let bytes = 0;
  for (let k = 0; k < 9; k++) {
    const t = performance.now();
    bytes = run();
    times.push(performance.now() - t);
  }
  result[name] = { ms: median(times), bytes };
}
console.log(
  JSON.stringify({
    runtime: process.versions.bun ? `bun ${process.versions.bun}` : `deno ${process.versions.deno}`,
    result,
  }),
);
