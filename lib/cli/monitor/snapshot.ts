/**
 * What one refresh of the monitor asks the supervisor: its status, the services, the open runs
 * and the connections, in four requests sent together. The shapes are the ops' answers
 * (PROTOCOL.md); the monitor reads them loosely, as `status` does, and shows `-` for what is missing.
 */
import type { Client } from '../../client.js';
import type { CallOptions } from '../../connection.js';
import type { ServiceStatus } from '../../services.js';

export interface Snapshot {
  /** When the answers were in hand (ms since the epoch, this process's clock). */
  at: number;
  status: Record<string, any>;
  /** Sorted by name, so the selection moves in an order people can predict. */
  services: ServiceStatus[];
  /** Open runs only: `{ run, state, records, bytes, owners, openedAt, ... }`. */
  runs: Array<Record<string, any>>;
  connections: Array<Record<string, any>>;
}

/** One snapshot; rejects as the first of the four requests does (each gets `call`'s deadline and signal). */
export async function takeSnapshot(client: Client, call: CallOptions): Promise<Snapshot> {
  const [status, services, runs, connections] = await Promise.all([
    client.status(call),
    client.services.list(call),
    client.runs.list({ ...call, recorded: false }),
    client.connections(call),
  ]);
  return {
    at: Date.now(),
    status,
    services: [...services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    runs: runs.open,
    connections,
  };
}
