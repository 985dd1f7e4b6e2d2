// Reads an Arrow IPC stream back with independent implementations and turns every value into one
// canonical string, the same for each reader and for PostgreSQL's side (see arrow_test.ts):
// integers, dates, times and timestamps as their integer values, floats as numbers, binary as
// hex, intervals as "months days nanoseconds", lists as JSON arrays of the element strings.
import { tableFromIPC as flechetteRead } from "@uwdata/flechette";
import { tableFromIPC as arrowJsRead } from "apache-arrow";
import pl from "nodejs-polars";

/** How a column's values are made canonical. */
export type Kind =
  | "int"
  | "float"
  | "string"
  | "bool"
  | "binary"
  | "raw64"
  | "raw32"
  | "interval"
  | "list-int"
  | "list-string"
  | "list-raw32";

export type Cell = string | number | null;
export interface ReadBack {
  reader: string;
  rows: number;
  batches: number;
  fields: { name: string; type: string; metadata: Record<string, string> }[];
  column(name: string, kind: Kind): Cell[];
}

const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

function scalar(value: unknown, kind: Kind): Cell {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case "int":
      return String(value);
    case "float":
      return value as number;
    case "bool":
      return value ? "true" : "false";
    case "binary":
      return hex(value as Uint8Array);
    default:
      return String(value);
  }
}

// Fixed-width temporal values are compared as the integers on the wire: the readers' own
// conversions (to milliseconds, to Date) round.
function rawCell(values: ArrayLike<unknown>, i: number, kind: Kind): Cell {
  if (kind === "raw64" || kind === "raw32") return String(values[i]);
  const bytes = values as Uint8Array;
  const view = new DataView(bytes.buffer, bytes.byteOffset + 16 * i, 16);
  return `${view.getInt32(0, true)} ${view.getInt32(4, true)} ${view.getBigInt64(8, true)}`;
}

/** The library sluice writes with. */
export function readWithFlechette(bytes: Uint8Array): ReadBack {
  const table = flechetteRead(bytes, { useBigInt: true });
  return {
    reader: "@uwdata/flechette",
    rows: table.numRows,
    batches: table.children[0]?.data.length ?? 0,
    fields: table.schema.fields.map((f) => ({
      name: f.name,
      type: String(f.type.typeId),
      metadata: Object.fromEntries(f.metadata ?? new Map()),
    })),
    column(name, kind) {
      const column = table.getChild(name);
      const out: Cell[] = [];
      for (const batch of column.data) {
        for (let i = 0; i < batch.length; i++) {
          // flechette's isValid reads the bitmap, which is absent when a batch has no NULLs.
          if (batch.nullCount > 0 && !batch.isValid(i)) out.push(null);
          else if (kind === "raw64" || kind === "raw32" || kind === "interval") {
            out.push(rawCell(batch.values as ArrayLike<unknown>, i, kind));
          } else if (kind.startsWith("list-")) {
            const child = (batch as unknown as { children: typeof batch[] }).children[0]!;
            const offsets = batch.offsets!;
            const items: Cell[] = [];
            for (let j = Number(offsets[i]); j < Number(offsets[i + 1]); j++) {
              items.push(
                child.nullCount > 0 && !child.isValid(j)
                  ? null
                  : kind === "list-raw32"
                  ? String(child.values![j])
                  : scalar(child.at(j), kind === "list-int" ? "int" : "string"),
              );
            }
            out.push(JSON.stringify(items));
          } else out.push(scalar(batch.at(i), kind));
        }
      }
      return out;
    },
  };
}

/** Apache Arrow's JavaScript implementation. */
export function readWithArrowJs(bytes: Uint8Array): ReadBack {
  const table = arrowJsRead(bytes);
  return {
    reader: "apache-arrow",
    rows: table.numRows,
    batches: table.batches.length,
    fields: table.schema.fields.map((f) => ({
      name: f.name,
      type: String(f.type),
      metadata: Object.fromEntries(f.metadata),
    })),
    column(name, kind) {
      const vector = table.getChild(name)!;
      const out: Cell[] = [];
      for (const data of vector.data) {
        for (let i = 0; i < data.length; i++) {
          const valid = data.getValid(i);
          if (!valid) out.push(null);
          else if (kind === "raw64" || kind === "raw32" || kind === "interval") {
            out.push(rawCell(data.values as ArrayLike<unknown>, data.offset + i, kind));
          } else if (kind.startsWith("list-")) {
            const child = data.children[0]!;
            const items: Cell[] = [];
            const offsets = data.valueOffsets!;
            for (let j = offsets[data.offset + i]!; j < offsets[data.offset + i + 1]!; j++) {
              items.push(
                !child.getValid(j)
                  ? null
                  : kind === "list-raw32"
                  ? String((child.values as Int32Array)[j])
                  : kind === "list-int"
                  ? String((child.values as Int32Array)[j])
                  : new TextDecoder().decode(
                    (child.values as Uint8Array).subarray(
                      child.valueOffsets![j]!,
                      child.valueOffsets![j + 1]!,
                    ),
                  ),
              );
            }
            out.push(JSON.stringify(items));
          } else {
            const v = vector.get(out.length);
            out.push(scalar(typeof v === "bigint" ? v : v, kind));
          }
        }
      }
      return out;
    },
  };
}

/**
 * Polars (Rust): a third reader. It refuses a whole stream holding an Interval(MonthDayNano)
 * column (unless POLARS_IMPORT_INTERVAL_AS_STRUCT=1 is in the environment, which Bun's
 * process.env does not pass to native code), so it reads streams of the types it loads.
 */
export function readWithPolars(
  bytes: Uint8Array,
): { rows: number; names: string[]; df: pl.DataFrame } {
  // deno-lint-ignore no-explicit-any
  const df = pl.readIPCStream((globalThis as any).Buffer.from(bytes));
  return { rows: df.height, names: df.columns, df };
}
