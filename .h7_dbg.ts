import { PGlite } from "@electric-sql/pglite";
for (let i = 0; i < 3; i++) {
let t = performance.now();
const pg = new PGlite();
await pg.waitReady;
console.log("start", performance.now() - t);
t = performance.now();
await pg.close();
console.log("close", performance.now() - t);
}
