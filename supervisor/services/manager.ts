/**
 * The services of one supervisor: the registry by name, persistence of what should run, the
 * resource sampler, clean-up of processes a dead supervisor left behind, and the stop of
 * everything when the supervisor stops.
 *
 * Contracts:
 * - Every state change of every service becomes one event on topic `service`, numbered with no
 *   gaps (EventBus).
 * - The desired state is saved whenever a client changes it (add, start, stop, restart, remove),
 *   never because the supervisor itself is stopping: a drained supervisor's services come back
 *   with the next one.
 * - `restore()` kills every process still carrying this home's marker before starting anything.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import PQueue from 'p-queue';
import { join } from 'node:path';
import {
  ErrorCode, type HomeLayout, MuxvisorError, resolveServiceDefinition, type ServiceEvent, type ServiceStatus, SERVICE_ENV,
} from '../../protocol/index.js';
import { type EventBus, SUPERVISOR_TOPIC } from '../events.js';
import type { Logger } from '../log.js';
import { markedProcesses, MARKER_ENV, readStat, signalAll } from './proc.js';
import { ResourceSampler } from './sampler.js';
import { ensureDir, LAUNCH_FILE, Service, type ServiceHost } from './service.js';
import { type SavedService, ServiceStore } from './store.js';
import { terminateTree } from './terminate.js';

export const SERVICE_TOPIC = 'service';

export interface ServicesOwner {
  /** True when run `id` is open now (a service tied to it may be added). */
  runIsOpen(id: string): boolean;
  /** The MUXVISOR_SERVICE value that leads a service's own clients to this supervisor. */
  serviceEnv(): string;
  /** Services that should run keep the supervisor from idling; called when that changes. */
  activityChanged(): void;
}

export interface AddOptions {
  /** Values of the definition's `inheritEnv` names, from the requesting process. */
  inherited?: Record<string, string>;
  /** Replace a service of the same name (it is stopped first). @default false */
  replace?: boolean;
  /** @default true */
  start?: boolean;
}

export class ServiceManager implements ServiceHost {
  readonly home: string;
  readonly homeId: string;
  readonly log: Logger;
  readonly sampler: ResourceSampler;
  readonly #dir: string;
  readonly #bus: EventBus;
  readonly #store: ServiceStore;
  readonly #owner: ServicesOwner;
  readonly #services = new Map<string, Service>();
  /** Every Service object not yet fully stopped, listed or not (stopAll and killAllNow reach all). */
  readonly #live = new Set<Service>();
  /** Adds and removes, one at a time, so a name never has two services. */
  readonly #registry = new PQueue({ concurrency: 1 });
  /** Leftovers of a dead supervisor being killed; no service starts before this settles. */
  #leftovers: Promise<unknown> = Promise.resolve();

  constructor(layout: HomeLayout, bus: EventBus, owner: ServicesOwner, log: Logger, sampleIntervalMs: number) {
    this.home = layout.home;
    this.homeId = homeMarkerId(layout.home);
    this.log = log.child({ part: 'services' });
    this.#dir = join(layout.home, 'services');
    ensureDir(this.#dir);
    this.#bus = bus;
    this.#owner = owner;
    this.#store = new ServiceStore(this.#dir, this.log);
    this.sampler = new ResourceSampler(sampleIntervalMs, () => this.#services.values(), this.log);
  }

  get size(): number {
    return this.#services.size;
  }

  /** Services that should be running (they keep the supervisor from idling). */
  get active(): number {
    let n = 0;
    for (const s of this.#services.values()) if (s.desired === 'running') n++;
    return n;
  }

  values(): IterableIterator<Service> {
    return this.#services.values();
  }

  /** Kills what a dead supervisor left running, then starts the saved services that should run. */
  async restore(): Promise<void> {
    const saved = this.#store.load();
    // Leftovers go first: a service (restored or newly added) starts only after they are dead.
    this.#leftovers = this.#killLeftovers(new Map(saved.map((e) => [e.definition.name, e.definition])));
    for (const entry of saved) {
      if (entry.definition.run !== null) {
        this.log.info({ service: entry.definition.name, run: entry.definition.run }, 'not restoring a service tied to a run of the previous supervisor');
        continue;
      }
      const service = this.#create(entry.definition, entry.ports);
      service.desired = entry.desired;
    }
    if (saved.length !== this.#services.size) void this.#save();
    // Started now (their launch waits for the leftovers), so a waiter sees a start pending.
    for (const service of this.#services.values()) {
      if (service.desired === 'running') void this.#start(service, 'restored: it was running when the previous supervisor stopped');
    }
    await this.#leftovers;
    this.sampler.start();
    this.#owner.activityChanged();
  }

  add(input: unknown, options: AddOptions = {}): Promise<ServiceStatus> {
    const definition = resolveServiceDefinition(input);
    return this.#registry.add(async () => {
      const existing = this.#services.get(definition.name);
      if (existing !== undefined) {
        if (!options.replace) {
          throw new MuxvisorError(ErrorCode.ServiceExists, `a service named \`${definition.name}\` exists (${existing.state}); remove it first or add with replace`, { data: { service: definition.name, state: existing.state } });
        }
        await this.#remove(existing, 'replaced by a new definition');
      }
      if (definition.run !== null && !this.#owner.runIsOpen(definition.run)) {
        throw new MuxvisorError(ErrorCode.UnknownRun, `service \`${definition.name}\` is tied to run ${definition.run}, which is not open`, { data: { run: definition.run } });
      }
      const service = this.#create(definition);
      service.inherited = pick(options.inherited ?? {}, definition.inheritEnv);
      if (options.start !== false) service.desired = 'running';
      await this.#save();
      this.#publish(service, { service: definition.name, state: 'stopped', previous: null, reason: 'added', pid: null, restarts: 0 });
      if (options.start !== false) void this.#start(service, 'added and started');
      this.#owner.activityChanged();
      return service.info();
    });
  }

  get(name: string): Service {
    const service = this.#services.get(name);
    if (service === undefined || service.disposed) {
      const known = [...this.#services.keys()].sort();
      throw new MuxvisorError(ErrorCode.UnknownService, `no service named \`${name}\` (known: ${known.join(', ') || 'none'})`, { data: { service: name, known } });
    }
    return service;
  }

  list(): ServiceStatus[] {
    return [...this.#services.values()].map((s) => s.info()).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Answered once the service is starting and its desired state (running) is on disk. */
  async start(name: string, inherited?: Record<string, string>): Promise<ServiceStatus> {
    const service = this.get(name);
    if (inherited !== undefined) service.inherited = pick(inherited, service.definition.inheritEnv);
    void this.#start(service, 'started by request');
    this.#owner.activityChanged();
    await this.#save();
    return service.info();
  }

  async restart(name: string): Promise<ServiceStatus> {
    const service = this.get(name);
    void service.restart('restarted by request').catch((error: Error) => this.log.error({ service: name, err: error.message }, 'restart failed'));
    this.#owner.activityChanged();
    await this.#save();
    return service.info();
  }

  async stop(name: string, timeoutMs?: number): Promise<ServiceStatus> {
    const service = this.get(name);
    const stopping = service.stop('stopped by request', timeoutMs);
    await this.#save();
    await stopping;
    this.#owner.activityChanged();
    return service.info();
  }

  async remove(name: string): Promise<void> {
    const service = this.get(name);
    await this.#registry.add(() => this.#remove(service, 'removed by request'));
  }

  /** A run finished: the services tied to it are stopped and removed. */
  runFinished(run: string): void {
    for (const service of [...this.#services.values()]) {
      if (service.definition.run === run) void this.#registry.add(() => this.#remove(service, `its run ${run} finished`));
    }
  }

  /** Stops every service (the supervisor is stopping); the saved desired state is left as it is. */
  async stopAll(timeoutMs: number): Promise<void> {
    await this.sampler.stop();
    const all = [...this.#live];
    const stopped = Promise.all(all.map((s) => s.shutdown('the supervisor is stopping', Math.min(timeoutMs, s.definition.stopTimeoutMs))));
    // A stop already under way (a user's, with a long timeout) must not hold the drain: past the
    // deadline (plus SIGKILL's grace), everything left is killed at once.
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([stopped.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs + 5_000)))]);
    clearTimeout(timer);
    if (late) {
      this.log.warn({ services: all.filter((s) => s.state !== 'stopped').map((s) => s.name) }, 'services still stopping at the drain deadline: killing them');
      this.killAllNow();
    }
    await Promise.all(all.map((s) => s.output.close()));
    await this.#store.settled();
  }

  /** SIGKILL to every process of every service, now (the supervisor is dying). */
  killAllNow(): void {
    for (const service of this.#live) service.killNow();
    try {
      signalAll(markedProcesses(`${this.homeId}/`).keys(), 'SIGKILL');
    } catch {
      // /proc unreadable: the groups were signalled above
    }
  }

  events(since: number | undefined) {
    return { seq: this.#bus.current(SERVICE_TOPIC), replay: since === undefined ? [] : this.#bus.since(SERVICE_TOPIC, since) };
  }

  // ServiceHost
  baseEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== MARKER_ENV && k !== 'MUXVISOR_RUN' && k !== 'MUXVISOR_LOG_LEVEL') env[k] = v;
    }
    env.MUXVISOR_HOME = this.home;
    env[SERVICE_ENV] = this.#owner.serviceEnv();
    return env;
  }

  portsChanged(service: Service): void {
    if (this.#services.get(service.name) === service) void this.#save();
  }

  transition(service: Service, event: ServiceEvent): void {
    if (this.#services.get(service.name) !== service) return; // a replaced service's last words
    this.#publish(service, event);
    if (event.state === 'exited' || event.state === 'failed' || event.state === 'stopped') this.#owner.activityChanged();
  }

  #publish(service: Service, event: ServiceEvent): void {
    const level = event.state === 'failed' || event.state === 'backoff' ? 'warn' : 'info';
    const published = this.#bus.publish(SERVICE_TOPIC, event);
    service.log[level]({ seq: published.seq, state: event.state, previous: event.previous, reason: event.reason, pid: event.pid }, 'service state');
  }

  #create(definition: SavedService['definition'], ports?: Record<string, number>): Service {
    const dir = join(this.#dir, definition.name);
    ensureDir(dir);
    const service = new Service(definition, dir, this, ports);
    service.afterCleanup(this.#leftovers);
    this.#services.set(definition.name, service);
    this.#live.add(service);
    return service;
  }

  async #start(service: Service, reason: string): Promise<void> {
    try {
      await service.start(reason);
    } catch (error) {
      this.log.error({ service: service.name, err: (error as Error).stack }, 'start failed unexpectedly');
    }
  }

  async #remove(service: Service, reason: string): Promise<void> {
    if (service.disposed) return;
    await service.dispose(reason);
    this.#live.delete(service);
    if (this.#services.get(service.name) !== service) return;
    this.#services.delete(service.name);
    await this.#save();
    this.#publish(service, { service: service.name, state: 'removed', previous: service.state, reason, pid: null, restarts: service.restarts });
    rmSync(service.dir, { recursive: true, force: true });
    this.#owner.activityChanged();
  }

  /**
   * Saves every service's definition, desired state and ports (services/store.ts), off the main
   * thread. A failure is logged, not thrown: the services run on, and the next save tries again.
   */
  async #save(): Promise<void> {
    try {
      await this.#store.save([...this.#services.values()].map((s) => ({ definition: s.definition, desired: s.desired, ports: s.ports })));
    } catch (error) {
      this.log.error({ err: (error as Error).message, path: this.#store.path }, 'saving the services state failed');
    }
  }

  async #killLeftovers(saved: Map<string, SavedService['definition']>): Promise<void> {
    // A launch record stays until its tree is confirmed gone, so without any there is nothing to
    // find, and start-up skips the scan of every process's environment.
    // Groups recorded at launch also find what lost its marker (a program that rewrites its
    // environment for its process title, as redis-server does); the leader's start time rules
    // out a reused pid.
    const groups = new Map<string, number>();
    let launches = 0;
    for (const name of safeReaddir(this.#dir)) {
      try {
        const launch = JSON.parse(readFileSync(join(this.#dir, name, LAUNCH_FILE), 'utf8')) as { pgid: number; start: number };
        launches++;
        if (readStat(launch.pgid)?.start === launch.start) groups.set(name, launch.pgid);
      } catch {
        // no launch recorded
      }
    }
    if (launches === 0) return;
    let found: Map<number, string>;
    try {
      found = markedProcesses(`${this.homeId}/`);
    } catch {
      return;
    }
    const names = new Set([...[...found.values()].map((marker) => marker.split('/')[1] as string), ...groups.keys()]);
    if (names.size === 0) return;
    this.log.warn({ processes: found.size, groups: [...groups.values()], services: [...names] }, 'killing processes left behind by a supervisor that died');
    await Promise.all([...names].map(async (name) => {
      const definition = saved.get(name);
      const result = await terminateTree({
        pgid: groups.get(name) ?? null, root: null, marker: `${this.homeId}/${name}/`,
        signal: (definition?.stopSignal ?? 'SIGTERM') as NodeJS.Signals, timeoutMs: definition?.stopTimeoutMs ?? 5_000,
      });
      this.#bus.publish(SUPERVISOR_TOPIC, { event: 'leftovers', service: name, ...result });
    }));
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The id of a home in process markers: the first 16 hex digits of the SHA-256 of its path. */
export function homeMarkerId(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 16);
}

function pick(values: Record<string, string>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (typeof values[n] === 'string') out[n] = values[n] as string;
  return out;
}
