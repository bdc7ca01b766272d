/**
 * The services' desired state on disk: `<home>/services/_state.json` (a service name cannot
 * start with `_`, so no service directory collides with it), written atomically (temp
 * file, fsync, rename, directory fsync) through the thread pool, with the previous copy kept as
 * `_state.json.bak`.
 *
 * What is saved: each definition (its `env` included, which the docs say must hold no secrets),
 * whether it should run, and the ports it was given. What is never saved: the values of
 * `inheritEnv` variables. A file of another schema, or unreadable, is set aside (renamed) and
 * the backup tried; neither is ever overwritten with an empty list by a failed read.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedServiceDefinition } from '../../protocol/index.js';
import { replaceFile } from '../fs-atomic.js';
import type { Logger } from '../log.js';

export const STATE_SCHEMA = 1;

export interface SavedService {
  definition: ResolvedServiceDefinition;
  desired: 'running' | 'stopped';
  ports: Record<string, number>;
}

interface StateFile {
  schema: number;
  savedAt: string;
  services: SavedService[];
}

export class ServiceStore {
  readonly path: string;
  readonly #log: Logger;

  constructor(dir: string, log: Logger) {
    this.path = join(dir, '_state.json');
    this.#log = log;
  }

  load(): SavedService[] {
    for (const path of [this.path, `${this.path}.bak`]) {
      if (!existsSync(path)) continue;
      try {
        const state = JSON.parse(readFileSync(path, 'utf8')) as StateFile;
        if (state.schema !== STATE_SCHEMA || !Array.isArray(state.services)) {
          throw new Error(`schema ${String(state.schema)} is not ${STATE_SCHEMA}`);
        }
        if (path !== this.path) this.#log.warn({ path }, 'services state restored from the backup copy');
        return state.services;
      } catch (error) {
        const aside = `${path}.unreadable-${Date.now()}`;
        this.#log.error({ path, aside, err: (error as Error).message }, 'services state unreadable; set aside');
        try {
          renameSync(path, aside);
        } catch {
          // leave it; the next save replaces it
        }
      }
    }
    return [];
  }

  /** The newest write: the one under way, or the one queued behind it. */
  #last: Promise<void> = Promise.resolve();
  /** True while a write is queued and not started: it takes `#latest` when it starts. */
  #queued = false;
  #latest: SavedService[] = [];

  /**
   * Saves `services`, through the thread pool (the main thread serves clients meanwhile). Resolves
   * once a write holding this state, or a newer one, is durable; rejects if that write failed.
   * Writes never overlap: one asked for during a write follows it, and several asked for
   * meanwhile make one write, of the newest state.
   */
  save(services: SavedService[]): Promise<void> {
    this.#latest = services;
    if (this.#queued) return this.#last;
    this.#queued = true;
    this.#last = this.#last.catch(() => undefined).then(() => {
      this.#queued = false;
      const state: StateFile = { schema: STATE_SCHEMA, savedAt: new Date().toISOString(), services: this.#latest };
      return replaceFile(this.path, `${JSON.stringify(state, null, 2)}\n`, { keepPrevious: true });
    });
    return this.#last;
  }

  /** Resolves once the last write asked for is done (for a supervisor that stops). Never rejects. */
  settled(): Promise<void> {
    return this.#last.catch(() => undefined);
  }
}
