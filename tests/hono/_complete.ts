// Whether a response body reads as a complete result, as a format's readers judge it; for the
// tests of failed responses. Not a test file.

/**
 * Whether a reader that parses each complete NDJSON line, and drops a last line cut short, takes
 * the text as a complete result.
 */
export function looksCompleteNdjson(text: string): boolean {
  const lines = text.split("\n").slice(0, -1);
  return lines.every((line) => {
    try {
      JSON.parse(line);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Whether a strict RFC 4180 reader (PostgreSQL's COPY FROM, csv-parse) takes the text as complete
 * CSV: every quoted field closed and followed by a separator, every record as wide as the first.
 * The end of the text ends the last record, line break or not.
 */
export function looksCompleteCsv(text: string): boolean {
  let width = -1;
  let fields = 0;
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      for (i++;;) {
        const quote = text.indexOf('"', i);
        if (quote < 0) return false;
        i = quote + 1;
        if (text[i] !== '"') break;
        i++;
      }
    } else {
      while (i < text.length && !",\r\n".includes(text[i]!)) {
        if (text[i] === '"') return false;
        i++;
      }
    }
    fields++;
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (i < text.length && text[i] !== "\n" && text[i] !== "\r") return false;
    if (width < 0) width = fields;
    else if (fields !== width) return false;
    fields = 0;
    if (text[i] === "\r") i++;
    if (text[i] === "\n") i++;
    if (i >= text.length) return true;
  }
}
