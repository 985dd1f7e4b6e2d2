import type { StreamFormat } from "./_negotiate.ts";

const encoder = new TextEncoder();
const LF = 0x0a;
const QUOTE = 0x22;

/**
 * Follows what a response body sent so that, when its stream fails, the body can end with bytes
 * no reader of the format takes for the end of a complete result.
 */
export interface FailureMark {
  /** Notes a chunk the body sent. */
  see(chunk: Uint8Array): void;
  /**
   * The bytes to send last, or `undefined` when the format cannot look complete without its
   * closing part (JSON's `]`, SSE's `end` event).
   */
  end(code: string | undefined): Uint8Array | undefined;
}

function describe(code: string | undefined): string {
  // Codes are SQLSTATEs or sluice's own ([0-9A-Z_]); anything else is left out.
  const shown = code !== undefined && /^[0-9A-Z_]{1,40}$/.test(code) ? ` (${code})` : "";
  return `sluice: the query failed after the response started${shown}; this response is incomplete`;
}

/**
 * Whether a chunk holds an odd number of `"` bytes. Compares four bytes at a time: for each word,
 * the exact zero-byte test sets bit 7 of every byte equal to `"`; XOR-ing those words together
 * and folding the result leaves the parity of their count in bit 7. CSV responses pass every byte
 * through here, so it has to be much faster than the encoder.
 *
 * @param chunk The bytes.
 * @returns 1 when the count of `"` is odd, else 0.
 */
export function quoteParity(chunk: Uint8Array): number {
  let odd = 0;
  let i = 0;
  const misaligned = chunk.byteOffset & 3;
  const lead = misaligned === 0 ? 0 : Math.min(4 - misaligned, chunk.length);
  for (; i < lead; i++) if (chunk[i] === QUOTE) odd ^= 1;
  const words = (chunk.length - i) >>> 2;
  if (words > 0) {
    const view = new Uint32Array(chunk.buffer, chunk.byteOffset + i, words);
    let acc = 0;
    for (let w = 0; w < words; w++) {
      const x = view[w]! ^ 0x22222222;
      acc ^= ~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x | 0x7f7f7f7f);
    }
    acc ^= acc >>> 16;
    acc ^= acc >>> 8;
    odd ^= (acc >>> 7) & 1;
    i += words * 4;
  }
  for (; i < chunk.length; i++) if (chunk[i] === QUOTE) odd ^= 1;
  return odd;
}

/**
 * Creates the {@linkcode FailureMark} of a format:
 *
 * - NDJSON: a line that is not JSON (after a line break if the body stopped inside a line), so a
 *   reader that parses every line, or only every complete one, fails on it.
 * - CSV: a quoted field that is never closed (PostgreSQL's COPY, csv-parse and other strict readers
 *   refuse it). A body that stopped inside a quoted field — its `"` bytes so far are odd in
 *   number — only gets text without quotes, which keeps that field open.
 * - JSON: text where a `,` or the closing `]` must follow.
 * - SSE: nothing; a stream without its `end` event is incomplete.
 *
 * @param format The response's format.
 * @returns The mark.
 *
 * @example CSV stopped inside a quoted field
 * ```ts
 * import { createFailureMark } from "./_failure_mark.ts";
 * import assert from "node:assert/strict";
 *
 * const mark = createFailureMark("csv");
 * mark.see(new TextEncoder().encode('id,note\n1,"two\nlines'));
 * const end = new TextDecoder().decode(mark.end("57P01"));
 * assert.ok(end.startsWith("\nsluice:") && !end.includes('"'));
 * ```
 */
export function createFailureMark(format: StreamFormat): FailureMark {
  let last = LF;
  let inQuotes = 0;
  switch (format) {
    case "sse":
      return { see() {}, end: () => undefined };
    case "arrow":
      // Arrow IPC lets a stream end without its end-of-stream marker, so a cut body could pass for
      // a whole one: the mark is a message header announcing 64 KiB of metadata that never come.
      return { see() {}, end: () => new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0]) };
    case "json":
      return { see() {}, end: (code) => encoder.encode(`\n${describe(code)}\n`) };
    case "ndjson":
      return {
        see(chunk) {
          if (chunk.length > 0) last = chunk[chunk.length - 1]!;
        },
        end: (code) => encoder.encode(`${last === LF ? "" : "\n"}${describe(code)}\n`),
      };
    case "csv":
      return {
        see(chunk) {
          if (chunk.length === 0) return;
          last = chunk[chunk.length - 1]!;
          inQuotes ^= quoteParity(chunk);
        },
        end(code) {
          if (inQuotes) return encoder.encode(`\n${describe(code)}\n`);
          return encoder.encode(`${last === LF ? "" : "\n"}"${describe(code)}\n`);
        },
      };
  }
}
