import type { StreamContext } from "./_context.ts";

/** The wire formats `streamQuery()` can serve. */
export type StreamFormat = "ndjson" | "csv" | "json" | "sse" | "arrow";

/** Every format name, for argument checks. */
export const STREAM_FORMATS: readonly StreamFormat[] = ["ndjson", "csv", "json", "sse", "arrow"];

/** The media types a client may ask for in `Accept`, in the order a wildcard prefers them. */
const MEDIA_TYPES: readonly (readonly [string, StreamFormat])[] = [
  ["application/x-ndjson", "ndjson"],
  ["application/jsonl", "ndjson"],
  ["application/json", "json"],
  ["text/csv", "csv"],
  ["text/event-stream", "sse"],
  // Only offered when streamQuery() was given the Arrow encoder (see its `arrow` option).
  ["application/vnd.apache.arrow.stream", "arrow"],
];

/** The media type each format is sent as when it was not picked through `Accept`. */
const DEFAULT_MEDIA_TYPE: Record<StreamFormat, string> = {
  ndjson: "application/x-ndjson",
  csv: "text/csv",
  json: "application/json",
  sse: "text/event-stream",
  arrow: "application/vnd.apache.arrow.stream",
};

/** What negotiation settled on. */
export interface Negotiated {
  /** The format to encode. */
  format: StreamFormat;
  /** The media type to send (without parameters). */
  mediaType: string;
}

function specificity(type: string): number {
  return type === "*/*" || type === "*" ? 1 : type.endsWith("/*") ? 2 : 3;
}

function matches(range: string, type: string): boolean {
  if (range === type || range === "*/*" || range === "*") return true;
  return range.endsWith("/*") && type.startsWith(range.slice(0, -1));
}

/**
 * Parses an `Accept` header into media ranges with their quality (RFC 9110 §12.5.1). Ranges with
 * a malformed `q` count as `q=1`, as most servers treat them.
 *
 * @param header The header value.
 * @returns The ranges, lower-cased.
 */
export function parseAccept(header: string): { type: string; q: number }[] {
  const ranges: { type: string; q: number }[] = [];
  for (const part of header.split(",")) {
    const [type = "", ...params] = part.split(";");
    const name = type.trim().toLowerCase();
    if (name === "") continue;
    let q = 1;
    for (const param of params) {
      const [key, value] = param.split("=");
      if (key?.trim().toLowerCase() === "q" && value !== undefined) {
        const n = Number(value.trim());
        if (Number.isFinite(n) && n >= 0 && n <= 1) q = n;
      }
    }
    ranges.push({ type: name, q });
  }
  return ranges;
}

// RFC 9110 §12.5.1: the most specific range that matches a type sets its quality; the type with
// the highest quality wins, ties going to the earlier entry of MEDIA_TYPES.
function pickMediaType(ranges: { type: string; q: number }[], arrow: boolean): string {
  let best = "";
  let bestQ = 0;
  for (const [type, format] of MEDIA_TYPES) {
    if (format === "arrow" && !arrow) continue;
    let q = -1;
    let spec = 0;
    for (const range of ranges) {
      if (matches(range.type, type) && specificity(range.type) > spec) {
        spec = specificity(range.type);
        q = range.q;
      }
    }
    if (q > bestQ) best = type, bestQ = q;
  }
  return best;
}

/**
 * Picks the format of a response: `format` if given, else the `?format=` query parameter, else the
 * `Accept` header (no header means NDJSON).
 *
 * @param c The request's context.
 * @param format The format the route fixed, if any.
 * @param arrow Whether Arrow can be served (else it is never picked).
 * @returns The format and media type, or `undefined` when nothing offered is acceptable (406).
 */
export function negotiateFormat(
  c: StreamContext,
  format: StreamFormat | undefined,
  arrow = false,
): Negotiated | undefined {
  const chosen = format ?? c.req.query("format");
  if (chosen !== undefined) {
    const known = (STREAM_FORMATS as readonly string[]).includes(chosen) &&
      (chosen !== "arrow" || arrow);
    return known
      ? { format: chosen as StreamFormat, mediaType: DEFAULT_MEDIA_TYPE[chosen as StreamFormat] }
      : undefined;
  }
  const header = c.req.header("Accept");
  const mediaType = header === undefined || header.trim() === ""
    ? "application/x-ndjson"
    : pickMediaType(parseAccept(header), arrow);
  const entry = MEDIA_TYPES.find(([type]) => type === mediaType);
  return entry ? { format: entry[1], mediaType } : undefined;
}

/**
 * The media types a client can ask for, for a 406 response's detail.
 *
 * @param arrow Whether Arrow can be served.
 * @returns The list, comma separated.
 */
export function supportedMediaTypes(arrow = false): string {
  return MEDIA_TYPES.filter(([, format]) => arrow || format !== "arrow").map(([type]) => type)
    .join(", ");
}
