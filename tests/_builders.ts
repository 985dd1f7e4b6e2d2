// Kysely and Drizzle set up as query builders only (nothing connects), for the query-form tests.
// Not a test file.
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from "kysely";

/** Kysely without a database (its documented "splitting build and execution" setup). */
// deno-lint-ignore no-explicit-any
export const kysely: Kysely<any> = new Kysely<any>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    // deno-lint-ignore no-explicit-any
    createIntrospector: (db: Kysely<any>) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
