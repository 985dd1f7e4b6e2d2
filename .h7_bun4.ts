import { SQL } from "bun";
import postgres from "postgres";
import { streamBatches } from "./mod.ts";
const admin = postgres("postgres://postgres@127.0.0.1:5432/postgres");
const sql = new SQL("postgres://postgres@127.0.0.1:5432/postgres", { max: 2, connection: { application_name: "h7_probe4" } } as any);
const reader = streamBatches(sql as any, "select g from generate_series(1, 1000000) g").getReader();
await reader.read();
await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'h7_probe4'`;
try { for (;;) if ((await reader.read()).done) break; console.log("no error!"); } catch (e: any) { console.log("stream err", e.errno, e.code); }
for (let i = 0; i < 4; i++) {
  try { console.log(await sql`select ${i} as two`); } catch (e: any) { console.log("q err", i, e.errno, e.code); }
}
await sql.close(); await admin.end();
