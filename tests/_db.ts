// Shared helpers for tests that talk to the real PostgreSQL. Not a test file (leading underscore).
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";

/** A real postgres.js instance (tests use the driver's full API). */
// deno-lint-ignore no-explicit-any
export type Sql = postgres.Sql<any>;

/** The database the tests use. */
export const DATABASE_URL: string = process.env.DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/postgres";

let counter = 0;

/** A unique name, for tables and application names, safe across runtimes running at once. */
export function uniqueName(prefix: string): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return `${prefix}_${process.pid}_${++counter}_${rand}`.toLowerCase();
}

/** A postgres.js pool tagged with its own `application_name`, so pg_stat_activity can find it. */
export function connect(
  options: Record<string, unknown> = {},
): { sql: Sql; app: string } {
  const app = uniqueName("sluice_test");
  const sql = postgres(DATABASE_URL, {
    max: 4,
    onnotice: () => {},
    ...options,
    connection: { application_name: app, ...(options.connection as object ?? {}) },
  });
  return { sql, app };
}

/** Sessions of an application, as pg_stat_activity sees them (from a separate connection). */
export async function sessions(
  admin: Sql,
  app: string,
): Promise<{ pid: number; state: string | null; query: string }[]> {
  return [
    ...await admin`
    select pid, state, query from pg_stat_activity
    where application_name = ${app} and pid <> pg_backend_pid()`,
  ] as { pid: number; state: string | null; query: string }[];
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Asserts-friendly: no session of `app` is inside a transaction (idle in transaction or active). */
export async function busySessions(admin: Sql, app: string): Promise<string[]> {
  const rows = await sessions(admin, app);
  return rows.filter((r) => r.state !== "idle").map((r) => `${r.state}: ${r.query}`);
}

/** Ends a pool, failing loudly if it does not drain (the Bun `.cursor()` hang the issue names). */
export async function endPool(sql: Sql, timeoutMs = 5000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`sql.end() did not resolve in ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([sql.end({ timeout: 2 }), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a stream failed because its backend was killed or its connection closed under it. */
export function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code ?? "";
  return ["57P01", "CONNECTION_CLOSED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE"].includes(
    code,
  );
}

/**
 * Asserts that a pool whose connection was killed serves queries again: the dead connection
 * reconnects on demand. (postgres.js 3.4.9 may hand the FATAL 57P01 it read late to the next
 * query: one such failure is allowed.)
 */
export async function assertPoolRecovers(sql: Sql): Promise<void> {
  let one: unknown;
  for (let i = 0; i < 2 && one === undefined; i++) {
    try {
      one = (await sql`select 1 as one`)[0]!.one;
    } catch (e) {
      assert.equal((e as { code?: string }).code, "57P01");
    }
  }
  assert.equal(one, 1);
}
