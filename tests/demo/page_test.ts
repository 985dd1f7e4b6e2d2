// Loads the demo page in headless Chromium (Debian's, never a downloaded one): rows must arrive
// while the download runs, and Cancel must end the server's stream and free the database.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

interface Status {
  activeStreams: number;
  database: string;
  streams: { state: string; bytes: number }[];
}

/** Starts `deno run -A demo/main.ts` on PGlite and resolves with its URL once it listens. */
function startDemo(port: number): { url: Promise<string>; stop(): void; output(): string } {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    NO_COLOR: "1",
  };
  delete env.DATABASE_URL; // the embedded PGlite, as from a fresh clone
  const child = spawn(join(ROOT, "node_modules", ".bin", "deno"), ["run", "-A", "demo/main.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = new Promise<string>((resolve, reject) => {
    const onData = (d: Uint8Array): void => {
      out += new TextDecoder().decode(d);
      const m = out.match(/sluice demo: (http:\/\/localhost:\d+\/)/);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`the demo exited with ${code}:\n${out}`)));
  });
  url.catch(() => {});
  return { url, stop: () => void child.kill("SIGTERM"), output: () => out };
}

async function waitUntil<T>(
  what: string,
  get: () => Promise<T>,
  ok: (v: T) => boolean,
  ms: number,
) {
  const deadline = Date.now() + ms;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
    last = await get();
  }
  return last;
}

test("demo page: rows stream in, Cancel ends the server's stream and frees PGlite", {
  timeout: 90_000,
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (tests/_setup.sh installs it)`,
}, async () => {
  const started = Date.now();
  const demo = startDemo(20_000 + Math.floor(Math.random() * 10_000));
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    const url = await Promise.race([
      demo.url,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`the demo did not start:\n${demo.output()}`)), 60_000)
      ),
    ]);
    const status = async (): Promise<Status> =>
      await (await fetch(new URL("status", url), { cache: "no-store" })).json();

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(url);

    // The page starts the download on load; the count must grow while it is still running.
    const counts: number[] = [];
    const deadline = Date.now() + 20_000;
    while (counts.length < 4 && Date.now() < deadline) {
      const n = Number((await page.textContent("#rows"))!.replace(/,/g, ""));
      if (n > 0 && (counts.length === 0 || n > counts.at(-1)!)) counts.push(n);
      await page.waitForTimeout(250);
    }
    assert.ok(counts.length >= 4, `the row count did not keep growing: ${counts.join(" → ")}`);
    assert.ok(counts.at(-1)! < 1_000_000, "the whole table arrived before Cancel could be tested");
    assert.equal((await status()).activeStreams, 1, "the server does not report the stream");
    assert.equal(await page.textContent("#state"), "streaming");
    assert.equal(await page.locator("#first tr").count(), 12, "the first rows are not shown");

    await page.click("#cancel");
    // Strings, not functions: they run in the page (and need no DOM types here).
    await page.waitForFunction(
      `document.getElementById("state").textContent.startsWith("cancelled")`,
    );
    const after = await waitUntil(
      "the server to end the stream and release the connection",
      status,
      (s) => s.activeStreams === 0 && s.database === "free" && s.streams[0]?.state === "cancelled",
      10_000,
    );
    assert.ok(after.streams[0]!.bytes > 0);
    // The page shows the same (it polls /status).
    await page.waitForFunction(
      `document.getElementById("db-state")?.textContent.startsWith("released") &&
       document.getElementById("last-state")?.textContent === "cancelled"`,
    );
    mkdirSync(join(ROOT, "tests", "artifacts"), { recursive: true });
    await page.screenshot({
      path: join(ROOT, "tests", "artifacts", "demo_page.png"),
      fullPage: true,
    });
    assert.ok(Date.now() - started < 90_000);
  } finally {
    await browser?.close();
    demo.stop();
  }
});
