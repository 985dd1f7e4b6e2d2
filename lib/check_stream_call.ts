import { checkOptionNames } from "./check_option_names.ts";
import { checkIncludeMap } from "./load_includes.ts";
import { STREAM_OPTION_NAMES } from "./options.ts";
import type { StreamOptions } from "./options.ts";
import { resolveKeysetOptions } from "./sources/postgres_keyset.ts";
import { normalizeQuery } from "./sources/postgres_query.ts";
import { checkDatabase } from "./sources/open_source.ts";
import { resolvePartitionOptions } from "./partitions/partition_options.ts";
import { isTableQuery } from "./partitions/table_query.ts";
import { hasOwnOrderBy, leadingKeyword } from "./sources/_sql_text.ts";

/**
 * Checks a stream call's arguments at call time, so mistakes surface where they were made: the
 * query's form and kind (a statement that returns rows), every option name, and the options of
 * the features above the engine (`include`, keyset pages); `resolveStreamOptions` checks the
 * engine's own values. Kept apart so the options module imports no feature.
 *
 * @param db The database.
 * @param query The query.
 * @param options The stream options.
 * @param what The public function's name, for messages.
 * @param extra Option names the function takes besides the stream options.
 * @throws {TypeError | RangeError} On a query of no accepted form or kind, an unknown option
 *   name, a bad include map or keyset option.
 */
export function checkStreamCall(
  db: unknown,
  query: unknown,
  options: StreamOptions | undefined,
  what: string,
  extra: readonly string[] = [],
): void {
  const keyset = options === undefined ? undefined : checkOptions(options, what, extra);
  checkDatabase(db);
  // A table by name is checked when its query is built (names quoted, never SQL).
  if (isTableQuery(query)) return;
  const normal = normalizeQuery(query);
  // The text of a driver's template is its first piece: enough for the statement's kind.
  const strings = (normal.fragment as { strings?: unknown } | undefined)?.strings;
  const text = normal.text ??
    (Array.isArray(strings) && strings.every((p) => typeof p === "string")
      ? strings.join(" $0 ")
      : undefined);
  if (text === undefined) return;
  const keyword = leadingKeyword(text);
  if (keyword !== undefined && !ROW_STATEMENTS.includes(keyword)) {
    throw new TypeError(
      `Cannot stream ${keyword.toUpperCase()} statements with ${what}: a stream needs a query that returns rows (${
        ROW_STATEMENTS.map((k) => k.toUpperCase()).join(", ")
      }); current value starts with "${text.trim().slice(0, 40)}"`,
    );
  }
  if (keyset && hasOwnOrderBy(text)) {
    throw new TypeError(
      `Cannot use a query with its own ORDER BY for keyset pages (key ${
        keyset.key.join(", ")
      }): each page is ordered by the key; remove the ORDER BY (current value ends with "…${
        text.trim().slice(-40)
      }")`,
    );
  }
}

// What `DECLARE … CURSOR FOR` (and `COPY (…) TO`) can read from, and what can wrap one of them.
const ROW_STATEMENTS = ["select", "with", "values", "table"];

function checkOptions(options: StreamOptions, what: string, extra: readonly string[]) {
  checkOptionNames(
    options,
    extra.length ? [...STREAM_OPTION_NAMES, ...extra] : STREAM_OPTION_NAMES,
    what,
  );
  if (options.include !== undefined) checkIncludeMap(options.include);
  resolvePartitionOptions(options);
  return resolveKeysetOptions(options);
}
