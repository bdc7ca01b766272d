/**
 * One integrity episode's world: its home, its clients, the supervisors it has seen and how each
 * ended, the section's own library client (`admin`, reconnected after a supervisor dies), and
 * what the checker will expect.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, connect, ErrorCode } from '../../../lib/index.js';
import type { TempHome } from '../../helpers/home.js';
import { distDir, programsDir, type SectionContext } from '../context.js';
import { ChaosClient } from './clients.js';
import { Expectations } from './expectations.js';

/** How a supervisor ended: killed, drained by a signal, or stopped by `muxvisor stop`. */
export type SupervisorEnd = 'SIGKILL' | 'SIGTERM' | 'stop';

export const SERVICE = 'chaos-svc';
export const misbehavingHandler = join(distDir, '..', 'test', 'fixtures', 'handlers', 'misbehaving.mjs');

export class World {
  readonly expected = new Expectations();
  readonly clients: ChaosClient[] = [];
  /** Every supervisor pid seen, with how it ended (null: still running, as far as we know). */
  readonly supervisors = new Map<number, SupervisorEnd | null>();
  #admin: Promise<Client> | null = null;
  #tags = 0;

  constructor(readonly ctx: SectionContext, readonly home: TempHome, readonly episode: number) {}

  live(): ChaosClient[] {
    return this.clients.filter((c) => c.running && c.killedBy === null);
  }

  spawnClient(): ChaosClient {
    const rng = this.ctx.rng;
    const client = new ChaosClient(this.ctx, {
      home: this.home.home,
      tag: `e${this.episode}c${this.#tags++}`,
      seed: rng.int(0, 0x7fffffff),
      syncEvery: [rng.int(20, 200), rng.int(500, 3_000)],
      finishEvery: [rng.int(1_000, 5_000), rng.int(10_000, 40_000)],
      padBytes: rng.int(0, 200),
      shared: rng.chance(0.5),
    });
    this.clients.push(client);
    return client;
  }

  /** The section's own client, connected to whichever supervisor runs (starting one if none does). */
  admin(): Promise<Client> {
    this.#admin ??= connect({ home: this.home.home, name: 'chaos-section', timeoutMs: 30_000 }).then((client) => {
      if (!this.supervisors.has(client.server.pid)) this.supervisors.set(client.server.pid, null);
      client.once('disconnect', () => this.dropAdmin());
      return client;
    });
    this.#admin.catch(() => (this.#admin = null));
    return this.#admin;
  }

  /** Forgets the section's client (its supervisor is gone); the next `admin()` connects again. */
  dropAdmin(): void {
    const admin = this.#admin;
    this.#admin = null;
    void admin?.then((c) => c.destroy(), () => {});
  }

  async closeAdmin(): Promise<void> {
    const admin = this.#admin;
    this.#admin = null;
    await admin?.then((c) => c.close(), () => {});
  }

  /** The running supervisor's pid, noting it as seen. */
  supervisorPid(): number | null {
    const pid = this.home.supervisorPid();
    if (pid !== null && !this.supervisors.has(pid)) this.supervisors.set(pid, null);
    return pid;
  }

  /** A run's `state` in its meta.json (`open`, `finished`), or null when it cannot be read. */
  runState(run: string): string | null {
    try {
      return String((JSON.parse(readFileSync(join(this.home.layout.runsDir, run, 'meta.json'), 'utf8')) as { state?: unknown }).state);
    } catch {
      return null;
    }
  }

  serviceDefinition() {
    return {
      name: SERVICE,
      command: process.execPath,
      args: [`${programsDir}chaos-service.js`],
      readiness: { type: 'log' as const, pattern: '^ready' },
      restart: { policy: 'always' as const, initialDelayMs: 100, maxDelayMs: 1_000, maxRestarts: 1_000 },
      stopTimeoutMs: 2_000,
    };
  }

  /**
   * Turns what the clients reported and what the section did into expected final statuses:
   * a run its client saw finish ended ok; a run open when its client was killed ended as that
   * kill says; a run open when its supervisor died or drained ended as that says. A finish in
   * flight at the moment also allows ok. Shared runs (several owners) get no expectation.
   */
  resolveEnds(): void {
    const byClientKill = { SIGKILL: 'crashed', exit: 'crashed', SIGTERM: 'interrupted' } as const;
    const bySupervisorEnd = { SIGKILL: 'crashed', SIGTERM: 'interrupted', stop: 'interrupted' } as const;
    for (const c of this.clients) {
      for (const { run, publisher, seq } of c.acks.values()) this.expected.ack(run, publisher, seq);
      for (const { run, publisher, seq } of c.flushedAtExit) this.expected.flushed(run, publisher, seq);
      for (const code of c.lostCodes) this.ctx.count(`client gave up a connection: ${code}`);
      for (const [run, { supervisor, shared }] of c.opened) {
        if (shared) continue;
        const finished = c.finished.get(run);
        if (finished) {
          // A finish that raced a drain is answered with the drain's status (all records kept).
          this.expected.end(run, [finished.status], `its client's finish, answered ${finished.status}`);
          this.expected.finishedRecords.set(run, finished.records);
          continue;
        }
        const also = c.finishing.has(run) ? ['ok'] : [];
        const end = this.supervisors.get(supervisor);
        const lost = c.lost.get(run);
        // Lost with the connection, or finished under it (a drain finishes runs before it says
        // goodbye): its supervisor's end decided. Given up after another error: the client
        // closed its connection, and that crashed the run.
        const endedBySupervisor = lost === ErrorCode.ConnectionClosed || lost === ErrorCode.UnknownRun;
        if (endedBySupervisor && end) this.expected.end(run, [bySupervisorEnd[end], ...also], `supervisor ${end}`);
        else if (lost !== undefined) this.expected.end(run, ['crashed', ...also], `its client gave up the connection (${lost})`);
        else if (c.killedBy) this.expected.end(run, [byClientKill[c.killedBy], ...also], `client ${c.killedBy}`);
      }
    }
  }
}
