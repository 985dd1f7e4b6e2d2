import { SluiceError } from "../errors.ts";

/** What an `after` token is bound to: the key it pages by, the direction and, signed, a scope. */
export interface AfterTokenOptions {
  /** The key columns the token's values belong to. */
  key: readonly string[];
  /** `"asc"` or `"desc"`. */
  direction: "asc" | "desc";
  /** Signs the token with HMAC-SHA-256; a token without a valid signature is then refused. */
  secret?: string | undefined;
  /**
   * What the signature also covers (see `tokenScope()`): a signed token is refused where the scope
   * differs. Not part of the token's text; unsigned tokens ignore it.
   */
  scope?: string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new Error("not base64url");
  }
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

// The text signed: the payload, then the scope on a line of its own (base64url has no line
// break, so no payload and scope pair reads as another).
function signedText(payload: string, scope: string | undefined): Uint8Array<ArrayBuffer> {
  return encoder.encode(scope === undefined ? payload : `${payload}\n${scope}`);
}

function checkSecret(secret: unknown): void {
  if (secret !== undefined && (typeof secret !== "string" || secret === "")) {
    throw new TypeError(
      `Cannot use secret as an HMAC key: current value is ${
        typeof secret === "string" ? "an empty string" : String(secret)
      }`,
    );
  }
}

/**
 * Encodes the key values of the last row of a page as an opaque `after` token: base64url of
 * `{"k":[key columns],"d":direction,"a":[values]}`, followed by `.` and a base64url HMAC-SHA-256
 * of that text and the scope when a secret is given (Web Crypto, available on every runtime).
 *
 * @param values The key values, as PostgreSQL's text.
 * @param options The key, direction, optional secret and scope the token is bound to.
 * @returns The token.
 *
 * @example Round trip
 * ```ts
 * import { decodeAfterToken, encodeAfterToken } from "./_token.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { key: ["id"], direction: "asc" as const, secret: "s3cret" };
 * const token = await encodeAfterToken(["42"], options);
 * assert.deepEqual(await decodeAfterToken(token, options), ["42"]);
 * ```
 */
export async function encodeAfterToken(
  values: readonly string[],
  options: AfterTokenOptions,
): Promise<string> {
  checkSecret(options.secret);
  const payload = toBase64Url(
    encoder.encode(JSON.stringify({ k: options.key, d: options.direction, a: values })),
  );
  if (options.secret === undefined) return payload;
  const signature = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(options.secret),
    signedText(payload, options.scope),
  );
  return `${payload}.${toBase64Url(new Uint8Array(signature))}`;
}

function badToken(reason: string, cause?: unknown): SluiceError {
  return new SluiceError(
    "BAD_INPUT",
    `Cannot use after as a page token: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Decodes an `after` token made by {@linkcode encodeAfterToken} for the same key, direction,
 * secret and scope, and returns its key values. The signature is checked with `crypto.subtle.verify`
 * (constant time) before the payload is parsed.
 *
 * @param token The token from the request.
 * @param options The key, direction, optional secret and scope the token must be bound to.
 * @returns The key values (PostgreSQL text), one per key column.
 * @throws {SluiceError} `BAD_INPUT` when the token is malformed, unsigned or wrongly signed (with a
 *   secret: also when signed for another scope), or made for another key or direction.
 *
 * @example Refuse a tampered token
 * ```ts
 * import { decodeAfterToken, encodeAfterToken } from "./_token.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { key: ["id"], direction: "asc" as const, secret: "s3cret" };
 * const token = await encodeAfterToken(["42"], options);
 * await assert.rejects(decodeAfterToken("x" + token, options), { code: "BAD_INPUT" });
 * ```
 */
export async function decodeAfterToken(
  token: string,
  options: AfterTokenOptions,
): Promise<string[]> {
  checkSecret(options.secret);
  if (typeof token !== "string" || token === "" || token.length > 8192) {
    throw badToken("it is empty or too long");
  }
  const parts = token.split(".");
  if (parts.length > 2 || (options.secret === undefined && parts.length !== 1)) {
    throw badToken("it is malformed");
  }
  const payload = parts[0]!;
  if (options.secret !== undefined) {
    if (parts.length !== 2) throw badToken("it is not signed");
    let signature: Uint8Array;
    try {
      signature = fromBase64Url(parts[1]!);
    } catch (error) {
      throw badToken("its signature is malformed", error);
    }
    const ok = await crypto.subtle.verify(
      "HMAC",
      await hmacKey(options.secret),
      signature as Uint8Array<ArrayBuffer>,
      signedText(payload, options.scope),
    );
    if (!ok) throw badToken("its signature does not match");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(fromBase64Url(payload)));
  } catch (error) {
    throw badToken("it is malformed", error);
  }
  const { k, d, a } = (parsed ?? {}) as { k?: unknown; d?: unknown; a?: unknown };
  const key = options.key;
  if (
    !Array.isArray(k) || k.length !== key.length || k.some((name, i) => name !== key[i]) ||
    d !== options.direction
  ) {
    throw badToken("it was made for another key or direction");
  }
  if (!Array.isArray(a) || a.length !== key.length || a.some((v) => typeof v !== "string")) {
    throw badToken("its key values do not fit the key");
  }
  return a as string[];
}
