import { SQL } from "bun";
import postgres from "postgres";
const admin = postgres("postgres://postgres@127.0.0.1:5432/postgres");
const sql = new SQL("postgres://postgres@127.0.0.1:5432/postgres", { max: 2, connection: { application_name: "h7_probe3" } } as any);
const r = await sql.reserve();
await r`begin read only`;
await r.unsafe("declare c no scroll cursor for select g from generate_series(1,1000000) g");
const f = await r.unsafe("fetch forward 10 from c").simple().raw();
console.log(f.length, f.columns);
await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'h7_probe3'`;
try { await r.unsafe("fetch forward 10 from c").simple().raw(); } catch (e: any) { console.log("err", e.code, e.errno, e.name, e.message, Object.keys(e)); }
try { await r.unsafe("rollback"); } catch (e: any) { console.log("err2", e.code, e.message); }
r.release();
console.log(await sql`select 1 as x`);
// cancel mid-query
const r2 = await sql.reserve();
const q = r2.unsafe("select pg_sleep(5)").simple();
const p = q.then(() => "ok", (e: any) => "err " + e.code + " " + e.message);
setTimeout(() => q.cancel(), 200);
console.log(await p);
console.log(await r2`select 2 as y`);
r2.release();
await sql.close(); await admin.end();
