// Counts the demo's open streams and tells how each ended, for GET /status (the page shows it).
import type { BatchInfo } from "../mod.ts";
import type { DemoDatabase } from "./db.ts";

/** How a stream ended, as /status reports it. */
export interface StreamRecord {
  /** 1-based stream number. */
  id: number;
  /** ndjson, csv, json or sse. */
  format: string;
  /** "streaming", then "done", "cancelled" (the client went away) or "failed". */
  state: "streaming" | "done" | "cancelled" | "failed";
  /** Bytes sent so far. */
  bytes: number;
  /** When it started / ended (ISO). */
  startedAt: string;
  endedAt?: string;
}

/** What GET /status answers. */
export interface StatusSnapshot {
  driver: string;
  total: number;
  activeStreams: number;
  maxStreams: number;
  /** "free": no transaction or cursor left; "in use": a stream holds a connection. */
  database: "free" | "in use";
  batches: number;
  streams: StreamRecord[];
}

/**
 * Creates the demo's stream bookkeeping.
 *
 * @param database The demo database.
 * @returns Functions for the routes.
 */
export function openStatus(database: DemoDatabase): {
  track(format: string, signal: AbortSignal, response: Promise<Response>): Promise<Response>;
  batch(info: BatchInfo): void;
  snapshot(): Promise<StatusSnapshot>;
} {
  let active = 0;
  let batches = 0;
  let counter = 0;
  const records: StreamRecord[] = [];

  return {
    batch: () => void batches++,
    async track(format, signal, response) {
      const res = await response;
      if (res.status !== 200 || res.body === null) return res;
      const record: StreamRecord = {
        id: ++counter,
        format,
        state: "streaming",
        bytes: 0,
        startedAt: new Date().toISOString(),
      };
      records.unshift(record);
      records.length = Math.min(records.length, 10);
      active++;
      const end = (state: StreamRecord["state"]): void => {
        if (record.state !== "streaming") return;
        record.state = state;
        record.endedAt = new Date().toISOString();
        active--;
      };
      const reader = res.body.getReader();
      // The record ends only once sluice's stream has ended — after the cursor is closed and the
      // connection released — because cancel() and a failed read settle after that cleanup.
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              end("done");
              controller.close();
            } else {
              record.bytes += value.byteLength;
              controller.enqueue(value);
            }
          } catch (error) {
            // The request's signal aborts when the client goes away (Cancel on the page).
            end(signal.aborted ? "cancelled" : "failed");
            throw error;
          }
        },
        async cancel(reason) {
          try {
            await reader.cancel(reason);
          } finally {
            end("cancelled");
          }
        },
      }, { highWaterMark: 0 });
      return new Response(body, { status: res.status, headers: res.headers });
    },
    async snapshot() {
      return {
        driver: database.driver,
        total: database.total,
        activeStreams: active,
        maxStreams: database.maxStreams,
        database: active === 0 && await database.isFree() ? "free" : "in use",
        batches,
        streams: records,
      };
    },
  };
}
