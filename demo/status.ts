// Counts the demo's open streams and tells how each ended, for GET /status (the page shows it).
import type { StreamEnding, StreamOptions } from "../mod.ts";
import type { DemoDatabase } from "./db.ts";

/** How a stream ended, as /status reports it. */
export interface StreamRecord {
  /** 1-based stream number. */
  id: number;
  /** ndjson, csv, json or sse. */
  format: string;
  /** "streaming", then "done", "cancelled" (the client went away) or "failed". */
  state: "streaming" | "done" | "cancelled" | "failed";
  /** Bytes of the rows' values read so far (as the server sent them). */
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
 * Creates the demo's stream bookkeeping, fed by sluice's own hooks: `onBatch` as rows arrive and
 * `onEnd` once a stream ended and its connection was released.
 *
 * @param database The demo database.
 * @returns Functions for the routes.
 */
export function openStatus(database: DemoDatabase): {
  start(format: string): Pick<StreamOptions, "onBatch" | "onEnd">;
  snapshot(): Promise<StatusSnapshot>;
} {
  let active = 0;
  let batches = 0;
  let counter = 0;
  const records: StreamRecord[] = [];
  const states: Record<StreamEnding, StreamRecord["state"]> = {
    completed: "done",
    cancelled: "cancelled",
    aborted: "cancelled",
    idle_timeout: "failed",
    error: "failed",
  };

  return {
    start(format) {
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
      return {
        onBatch(info) {
          batches++;
          record.bytes += info.bytes;
        },
        onEnd(summary) {
          record.state = states[summary.ending];
          record.bytes = summary.bytes;
          record.endedAt = new Date().toISOString();
          active--;
        },
      };
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
