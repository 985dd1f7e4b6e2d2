// Starts tests/hono/_servers/serve.ts in a child process of the runtime running the tests (Deno
// under `deno test`, Bun under `bun test`, Node under `node --test`), so each runtime's own
// server is exercised. Not a test.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { connect as netConnect } from "node:net";
import type { Socket } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { DATABASE_URL, uniqueName } from "../_db.ts";
import { scriptArgs } from "../_runtime.ts";

const SERVE = fileURLToPath(new URL("./_servers/serve.ts", import.meta.url));

export { RUNTIME } from "../_runtime.ts";

/** A running test server. */
export interface TestServer {
  url: string;
  port: number;
  pid: number;
  /** application_name of the server's pool. */
  app: string;
  /** The server's current and peak RSS and heap in bytes and its statement counter; `gc` first
   * runs a full garbage collection. */
  stats(gc?: boolean): Promise<
    {
      rss: number;
      hwm: number;
      heapUsed: number;
      external: number;
      fds: number;
      statements: number;
    }
  >;
  stop(): Promise<void>;
}

/** Starts a server; `env` sets SLUICE_POOL_MAX, SLUICE_IDLE_MS, SLUICE_LIMIT_MAX … */
export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const app = uniqueName("sluice_hono");
  const child: ChildProcess = spawn(process.execPath, scriptArgs(SERVE, { exposeGc: true }), {
    env: { ...process.env, DATABASE_URL, SLUICE_APP: app, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
    child.stdout!.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line).port);
        } catch {
          reject(new Error(`unexpected server output: ${out} ${stderr}`));
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    pid: child.pid!,
    app,
    async stats(gc = false) {
      return await (await fetch(`${url}/stats${gc ? "?gc" : ""}`)).json();
    },
    stop() {
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      });
    },
  };
}

/** A raw HTTP/1.1 exchange on a socket: what arrived, and how the connection ended. */
export interface RawExchange {
  socket: Socket;
  /** Resolves once at least `bytes` bytes arrived (headers included) or the connection closed. */
  received(bytes: number): Promise<void>;
  /** Everything received so far. */
  data(): Buffer;
  /** Resolves when the server closes the connection (or it errors). */
  closed: Promise<{ error: boolean }>;
}

/**
 * Sends `GET path` on a new socket and collects the reply: as HTTP/1.1 with `Connection: close`,
 * or as HTTP/1.0 (what nginx sends upstream by default), whose response body ends when the
 * connection closes.
 */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  version: "1.0" | "1.1" = "1.1",
): RawExchange {
  const socket = netConnect({ host: "127.0.0.1", port });
  const chunks: Buffer[] = [];
  let size = 0;
  const waiters: { bytes: number; resolve: () => void }[] = [];
  socket.on("data", (d: Buffer) => {
    chunks.push(d);
    size += d.length;
    for (const w of waiters.splice(0)) {
      if (size >= w.bytes) w.resolve();
      else waiters.push(w);
    }
  });
  const closed = new Promise<{ error: boolean }>((resolve) => {
    let error = false;
    socket.on("error", () => (error = true));
    socket.on("close", () => {
      for (const w of waiters.splice(0)) w.resolve();
      resolve({ error });
    });
  });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const connection = version === "1.1" ? "Connection: close\r\n" : "";
  socket.write(`GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\n${connection}${extra}\r\n`);
  return {
    socket,
    received(bytes) {
      if (size >= bytes || socket.destroyed) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ bytes, resolve }));
    },
    data: () => Buffer.concat(chunks),
    closed,
  };
}

/** Parses a raw chunked HTTP/1.1 response: status, headers, body and whether the 0-chunk came. */
export function parseChunked(raw: Buffer): {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  complete: boolean;
} {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(head[0]!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const parts: Buffer[] = [];
  let at = end + 4;
  let complete = false;
  if (headers["transfer-encoding"] !== "chunked") {
    const body = raw.subarray(at);
    const length = Number(headers["content-length"] ?? NaN);
    return { status, headers, body, complete: body.length === length };
  }
  for (;;) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16);
    if (Number.isNaN(size)) break;
    if (size === 0) {
      complete = raw.indexOf("\r\n", lineEnd + 2) >= 0;
      break;
    }
    if (lineEnd + 2 + size + 2 > raw.length) {
      parts.push(raw.subarray(lineEnd + 2));
      break;
    }
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return { status, headers, body: Buffer.concat(parts), complete };
}
