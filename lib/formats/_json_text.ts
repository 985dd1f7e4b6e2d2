import type { ChunkWriter } from "./_chunk_writer.ts";

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

/**
 * Writes a JSON text on one line. PostgreSQL's `row_to_json` escapes control characters inside
 * strings, so a raw CR or LF in its output can only be whitespace between tokens (kept verbatim
 * from a `json` column); it is written as a space, which leaves the JSON value unchanged and keeps
 * one row per line (NDJSON) and one row per `data:` line (SSE).
 *
 * @param w Where to write.
 * @param text UTF-8 JSON text.
 */
export function writeJsonLine(w: ChunkWriter, text: Uint8Array): void {
  if (text.indexOf(LF) === -1 && text.indexOf(CR) === -1) {
    w.write(text);
    return;
  }
  const copy = text.slice();
  for (let i = 0; i < copy.length; i++) {
    if (copy[i] === LF || copy[i] === CR) copy[i] = SPACE;
  }
  w.write(copy);
}
