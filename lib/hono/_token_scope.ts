import type { StreamContext } from "./_context.ts";

// Nested values deeper than this are cut off: no query's parameters reach it, and a cyclic object
// cannot run forever.
const MAX_DEPTH = 32;

function bytesText(view: ArrayBufferView): string {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

/**
 * A JSON-safe form of a query or parameter value in which values of different types never look
 * alike (`1` and `"1"`, a date and its text): each non-string, non-boolean, non-null value is an
 * array whose first item names its type.
 *
 * postgres.js keeps a ``sql`…` `` query's text pieces and parameters in the undocumented but
 * public `strings` and `args` fields of its `Query` (verified on postgres.js 3.4.x); nested
 * fragments and helpers (`sql(name)`, `sql.json(v)`) are objects whose own fields hold their
 * values. If a release renamed those fields, every query would bind alike: the
 * "signed tokens are bound to … the query's parameters" test fails then.
 *
 * @param value A query, a parameter or a part of one.
 * @param depth How deep in the value this is.
 * @returns The JSON-safe form.
 */
function describeValue(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return ["n", String(value)];
  if (typeof value === "bigint") return ["i", String(value)];
  if (value === undefined) return ["u"];
  if (typeof value !== "object") return ["?", typeof value];
  if (depth > MAX_DEPTH) return ["…"];
  if (value instanceof Date) {
    return ["d", Number.isNaN(value.getTime()) ? "invalid" : value.toISOString()];
  }
  if (ArrayBuffer.isView(value)) return ["b", bytesText(value)];
  if (value instanceof ArrayBuffer) return ["b", bytesText(new Uint8Array(value))];
  if (Array.isArray(value)) return ["a", ...value.map((v) => describeValue(v, depth + 1))];
  const { strings, args } = value as { strings?: unknown; args?: unknown };
  if (Array.isArray(strings) && Array.isArray(args)) {
    return ["q", [...strings], describeValue(args, depth + 1)];
  }
  const fields = Object.keys(value).sort()
    .filter((k) => typeof (value as Record<string, unknown>)[k] !== "function")
    .map((k) => [k, describeValue((value as Record<string, unknown>)[k], depth + 1)]);
  return ["o", fields];
}

/**
 * What a signed page token of a request is bound to: the caller's `scope` when given, else the
 * request's path together with the query's SQL text and parameter values. A token signed for
 * `/orders?shop=1` (`… where shop = $1` with 1) then fails to verify on `/orders?shop=2`, on
 * another route, or on a route whose query differs.
 *
 * @param c The request's context.
 * @param query The query the page or stream runs.
 * @param scope The caller's scope, if any.
 * @returns The text the token's signature covers besides its payload.
 *
 * @example Two owners, two scopes
 * ```ts
 * import { tokenScope } from "./_token_scope.ts";
 * import assert from "node:assert/strict";
 *
 * const c = (url: string) => ({ req: { raw: new Request(url) } });
 * const q = (owner: string) => ({ query: "select * from t where owner = $1", params: [owner] });
 * // deno-lint-ignore no-explicit-any
 * const a = tokenScope(c("http://x/t?o=a") as any, q("a"));
 * // deno-lint-ignore no-explicit-any
 * assert.notEqual(a, tokenScope(c("http://x/t?o=b") as any, q("b")));
 * // deno-lint-ignore no-explicit-any
 * assert.equal(a, tokenScope(c("http://evil.example/t?o=b&after=x") as any, q("a")));
 * ```
 */
export function tokenScope(c: StreamContext, query: unknown, scope?: string): string {
  if (scope !== undefined) return `scope ${JSON.stringify(scope)}`;
  const path = new URL(c.req.raw.url).pathname;
  return `route ${JSON.stringify(path)} query ${JSON.stringify(describeValue(query))}`;
}

/**
 * Checks a `scope` option.
 *
 * @param scope The option's value.
 * @throws {TypeError} When it is set but not a non-empty string.
 */
export function checkScope(scope: unknown): void {
  if (scope !== undefined && (typeof scope !== "string" || scope === "")) {
    throw new TypeError(
      `Cannot use scope as a page token scope: current value is ${
        typeof scope === "string" ? "an empty string" : String(scope)
      }`,
    );
  }
}
