/**
 * CPU and memory of every service, summed over its whole process tree: one scan of /proc for
 * the trees, then one pidusage call for every pid of every service, per tick.
 *
 * Contracts: a tick never overlaps the previous one (a slow tick delays the next); pidusage's
 * per-pid history expires `3 × interval` after a pid was last asked about (that expiry is what
 * closes the /proc fd it keeps per pid), so history of dead pids is dropped without leaking fds;
 * `lastTick` says what the last tick cost the supervisor.
 */
import { performance } from 'node:perf_hooks';
import pidusage from 'pidusage';
import type { Logger } from '../log.js';
import { processTable, treeMembers } from './proc.js';
import type { Service } from './service.js';

export interface TickCost {
  at: number;
  durationMs: number;
  /** Supervisor CPU (user + system) spent during the tick, in microseconds. */
  cpuMicros: number;
  processes: number;
  services: number;
}

export class ResourceSampler {
  readonly intervalMs: number;
  ticks = 0;
  lastTick: TickCost | null = null;
  readonly #services: () => Iterable<Service>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(intervalMs: number, services: () => Iterable<Service>, log: Logger) {
    this.intervalMs = intervalMs;
    this.#services = services;
    this.#log = log;
  }

  start(): void {
    if (this.intervalMs === 0 || this.#timer !== null) return;
    const loop = () => {
      this.#running = this.tick().catch((error: Error) => this.#log.warn({ err: error.message }, 'resource sampling failed'));
      void this.#running.then(() => {
        if (this.#timer !== null) this.#timer = setTimeout(loop, this.intervalMs);
      });
    };
    this.#timer = setTimeout(loop, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** One sample of every live service. */
  async tick(): Promise<void> {
    const cpu = process.cpuUsage();
    const began = performance.now();
    const live = [...this.#services()].filter((s) => s.pgid !== null && (s.state === 'starting' || s.state === 'running' || s.state === 'stopping'));
    if (live.length === 0) return;
    const table = processTable();
    const trees = live.map((s) => [s, treeMembers({ pgid: s.pgid, marker: null, known: s.known }, table, false)] as const);
    const pids = [...new Set(trees.flatMap(([, members]) => [...members.keys()]))];
    let stats: Record<string, pidusage.Status | undefined> = {};
    if (pids.length > 0) {
      try {
        stats = await pidusage(pids, { maxage: 3 * Math.max(this.intervalMs, 1_000) });
      } catch {
        // a single pid that died between the scan and the read: nothing to count
      }
    }
    const at = Date.now();
    for (const [service, members] of trees) {
      // Stopped while this tick read /proc: its figures are no longer its own.
      if (service.pgid === null || !(service.state === 'starting' || service.state === 'running' || service.state === 'stopping')) continue;
      let cpuPercent = 0;
      let memoryBytes = 0;
      let processes = 0;
      for (const pid of members.keys()) {
        const s = stats[pid];
        if (s === undefined || s === null) continue;
        cpuPercent += s.cpu;
        memoryBytes += s.memory;
        processes++;
      }
      service.known = [...members.values()];
      service.usage = { cpuPercent: Math.round(cpuPercent * 10) / 10, memoryBytes, processes, at };
    }
    const used = process.cpuUsage(cpu);
    this.ticks++;
    this.lastTick = { at, durationMs: performance.now() - began, cpuMicros: used.user + used.system, processes: pids.length, services: live.length };
  }
}
