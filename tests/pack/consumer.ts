// Type-checked with tsc against the installed tarball's declarations by tests/_node_pack.sh.
import postgres from "postgres";
import { Hono } from "hono";
import { streamNdjson, type StreamOptions } from "sluice";
import { streamQuery } from "sluice/hono";

const sql = postgres("postgres://postgres@127.0.0.1:5432/postgres");
const options: StreamOptions = {};
const body: ReadableStream<Uint8Array> = streamNdjson(sql, sql`select 1 as n`, options);
const app = new Hono();
app.get("/", (c) => streamQuery(c, sql, sql`select 1 as n`));
export { app, body };
