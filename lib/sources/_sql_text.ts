/**
 * Reads just enough of a query's SQL text to catch mistakes before the server would, in the
 * user's words: the statement's first keyword, and whether it ends with its own `ORDER BY`.
 * Quoted strings, quoted names, dollar quotes and comments are skipped; nothing else is parsed.
 */

/** Positions of `text` outside strings, names and comments, with their parenthesis depth. */
function* scan(text: string): Generator<{ at: number; depth: number }> {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      // A doubled quote inside is an escaped quote: the scan resumes right after it either way.
      i = end === -1 ? text.length : end + 1;
      continue;
    }
    if (ch === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end + 1;
      continue;
    }
    if (ch === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
      continue;
    }
    if (ch === "$") {
      const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i, i + 64));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? text.length : end + tag[0].length;
        continue;
      }
    }
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    yield { at: i, depth };
    i++;
  }
}

/**
 * The statement's first keyword, lower-cased (`select`, `with`, `update` …), or `undefined`.
 *
 * @param text SQL text.
 * @returns The first word outside comments and opening parentheses.
 */
export function leadingKeyword(text: string): string | undefined {
  for (const { at } of scan(text)) {
    const ch = text[at]!;
    if (ch === "(" || /\s/.test(ch)) continue;
    return /^[A-Za-z_]+/.exec(text.slice(at, at + 32))?.[0]?.toLowerCase();
  }
  return undefined;
}

/**
 * Whether the statement itself (not a subquery, window or aggregate) has an `ORDER BY`.
 *
 * @param text SQL text.
 * @returns `true` when an `ORDER BY` stands outside every parenthesis.
 */
export function hasOwnOrderBy(text: string): boolean {
  for (const { at, depth } of scan(text)) {
    if (depth !== 0 || (text[at] !== "o" && text[at] !== "O")) continue;
    if (at > 0 && /[\w$]/.test(text[at - 1]!)) continue;
    if (/^order\s+by\b/i.test(text.slice(at, at + 32))) return true;
  }
  return false;
}
