// Starts a real PgBouncer (Debian's package) in front of the test PostgreSQL, on a free loopback
// port, for the tests that must see what a transaction-mode pooler does. Not a test file.
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** A running PgBouncer. */
export interface PgBouncer {
  /** Its loopback port. */
  port: number;
  /** A connection URL through it (user postgres, database postgres). */
  url: string;
  /** Kills it (SIGKILL: every client and server connection drops at once). */
  kill(): Promise<void>;
  /** Starts it again on the same port after `kill()`. */
  start(): Promise<void>;
  /** Stops it and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPgBouncer}. */
export interface PgBouncerOptions {
  /** Default `"transaction"`. */
  poolMode?: "transaction" | "statement" | "session";
  /** Server connections per database/user pair. Default 4. */
  poolSize?: number;
  /** More `[pgbouncer]` settings. */
  settings?: Record<string, string | number>;
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function findBinary(): string {
  for (const path of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    if (existsSync(path)) return path;
  }
  // tests/_setup.sh installs Debian's pgbouncer when it is missing (needs root and apt).
  spawnSync("bash", [join(root, "tests", "_setup.sh")], { stdio: "inherit", timeout: 600_000 });
  for (const path of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    if (existsSync(path)) return path;
  }
  throw new Error("pgbouncer is not installed and tests/_setup.sh could not install it");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => (socket.destroy(), resolve(false)));
  });
}

/**
 * Starts PgBouncer in `pool_mode = transaction` (by default) in front of 127.0.0.1:5432, with
 * `auth_type = any` (every client logs in as the `postgres` of the database entry).
 */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const binary = findBinary();
  const dir = mkdtempSync(join(tmpdir(), "sluice-pgbouncer-"));
  // PgBouncer refuses to run as root; it then drops to `postgres`, which must read the config.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addr: "127.0.0.1",
    listen_port: port,
    unix_socket_dir: "",
    auth_type: "any",
    pool_mode: options.poolMode ?? "transaction",
    default_pool_size: options.poolSize ?? 4,
    max_client_conn: 500,
    ignore_startup_parameters: "extra_float_digits,options",
    ...options.settings,
  };
  const config = join(dir, "pgbouncer.ini");
  writeFileSync(
    config,
    "[databases]\n* = host=127.0.0.1 port=5432 user=postgres\n[pgbouncer]\n" +
      Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
  );
  chmodSync(config, 0o644);
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  let child: ChildProcess | undefined;
  let log = "";

  async function start(): Promise<void> {
    const args = asRoot ? ["-u", "postgres", config] : [config];
    const proc = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    child = proc;
    proc.stderr?.on("data", (d) => log = (log + d).slice(-4000));
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`pgbouncer did not start on port ${port}: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function kill(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  }

  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
