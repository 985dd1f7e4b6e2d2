import { rawGet, startServer } from "./_server.ts";
import { busySessions, connect, endPool, waitFor } from "../_db.ts";
const server = await startServer({ SLUICE_POOL_MAX: "8", SLUICE_IDLE_MS: "20000" });
const admin = connect().sql;
const disconnect = async (i: number) => {
  const t0 = performance.now();
  const ex = rawGet(server.port, "/rows?n=300000&pad=20");
  const timer = setTimeout(() => console.log("stuck", i, ex.data().length, ex.data().subarray(0, 300).toString()), 3000);
  await ex.received(i % 2 ? 2048 : 256 * 1024);
  clearTimeout(timer);
  ex.socket.destroy();
  return performance.now() - t0;
};
for (let w = 0; w < 14; w++) {
  const ts = await Promise.all(Array.from({ length: 8 }, (_, i) => disconnect(i)));
  console.log(ts.map((t) => t.toFixed(0)).join(" "), await busySessions(admin, server.app));
}
console.log(await server.stats(true));
await server.stop();
await endPool(admin);
