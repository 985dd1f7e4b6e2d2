// The demo's database: an embedded PGlite (no server needed) or the PostgreSQL at DATABASE_URL,
// holding a generated `sluice_demo_orders` table.
import postgres from "postgres";
import type { Database } from "../lib/sources/open_source.ts";

/** The demo table. */
export const TABLE = "sluice_demo_orders";
/** application_name of the demo's postgres.js pool (to find its sessions in pg_stat_activity). */
export const APP_NAME = "sluice-demo";

/** What the demo knows about its database. */
export interface DemoDatabase {
  /** The instance sluice streams from. */
  db: Database;
  /** "PGlite (embedded)" or "PostgreSQL". */
  driver: string;
  /** How many streams the database can serve at once (1 for PGlite's single connection). */
  maxStreams: number;
  /** Rows in the table. */
  total: number;
  /** Runs a query with the driver's own API (`$1` parameters). */
  rows(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Whether no stream holds a transaction (queried only when the server has no stream open). */
  isFree(): Promise<boolean>;
  /** Closes the database. */
  close(): Promise<void>;
}

const CREATE = `create table if not exists ${TABLE} (
  id bigint not null,
  customer text not null,
  status text not null,
  total numeric(10, 2) not null,
  items int not null,
  created_at timestamptz not null
)`;

// One generate_series per chunk, so a progress line can move while seeding.
const INSERT = `insert into ${TABLE} (id, customer, status, total, items, created_at)
select g,
  'customer-' || lpad((g * 7919 % 50000)::text, 5, '0'),
  (array['paid', 'open', 'shipped', 'refunded'])[1 + g % 4],
  round(((g * 104729) % 100000) / 100.0, 2),
  1 + g % 7,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '31 seconds'
from generate_series($1::bigint, $2::bigint) g`;

/**
 * Creates and fills the demo table when it is missing or empty.
 *
 * @param run Runs one statement.
 * @param count Rows wanted.
 * @param log Progress output.
 * @returns The row count.
 */
async function seed(
  run: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>,
  count: number,
  log: (line: string, done: boolean) => void,
): Promise<number> {
  await run(CREATE);
  const [existing] = await run(`select count(*)::int as n from ${TABLE}`);
  if (Number(existing!.n) > 0) return Number(existing!.n);
  const chunk = 100_000;
  const started = performance.now();
  for (let from = 1; from <= count; from += chunk) {
    const to = Math.min(count, from + chunk - 1);
    await run(INSERT, [from, to]);
    const pct = Math.round((to / count) * 100);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    log(
      `seeding ${TABLE}: ${to.toLocaleString("en")} / ${
        count.toLocaleString("en")
      } rows (${pct}%, ${secs} s)`,
      false,
    );
  }
  log(`seeding ${TABLE}: adding the primary key`, false);
  await run(`alter table ${TABLE} add primary key (id)`);
  await run(`analyze ${TABLE}`);
  log(
    `seeded ${count.toLocaleString("en")} orders in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
    true,
  );
  return count;
}

/**
 * Opens the demo database: PGlite in memory when `url` is unset, else PostgreSQL at `url`.
 *
 * @param url DATABASE_URL, if any.
 * @param count Rows to seed when the table is empty.
 * @param log Progress output.
 * @returns The database.
 */
export async function openDemoDatabase(
  url: string | undefined,
  count: number,
  log: (line: string, done: boolean) => void,
): Promise<DemoDatabase> {
  if (url === undefined || url === "") {
    log("starting PGlite (PostgreSQL in WebAssembly, in memory) …", true);
    const { PGlite } = await import("@electric-sql/pglite");
    const pg = new PGlite();
    await pg.waitReady;
    const rows = async (text: string, params?: unknown[]) =>
      (await pg.query<Record<string, unknown>>(text, params ?? [])).rows;
    const total = await seed(rows, count, log);
    return {
      db: pg,
      driver: "PGlite (embedded)",
      maxStreams: 1,
      total,
      rows,
      async isFree() {
        // A stream's transaction holds PGlite's only connection: this query would wait behind it.
        const check = rows("select count(*)::int as n from pg_cursors where name <> ''")
          .then((r) => r[0]!.n === 0);
        return await Promise.race([check, new Promise<boolean>((r) => setTimeout(r, 300, false))]);
      },
      close: () => pg.close(),
    };
  }
  const sql = postgres(url, {
    max: 8,
    onnotice: () => {},
    connection: { application_name: APP_NAME },
  });
  const rows = async (text: string, params?: unknown[]) =>
    // deno-lint-ignore no-explicit-any
    [...await sql.unsafe(text, (params ?? []) as any[])] as Record<string, unknown>[];
  const total = await seed(rows, count, log);
  return {
    db: sql,
    driver: "PostgreSQL",
    maxStreams: 4,
    total,
    rows,
    async isFree() {
      const [r] = await rows(
        `select count(*)::int as n from pg_stat_activity
         where application_name = $1 and pid <> pg_backend_pid() and state <> 'idle'`,
        [APP_NAME],
      );
      return r!.n === 0;
    },
    close: () => sql.end({ timeout: 2 }),
  };
}
