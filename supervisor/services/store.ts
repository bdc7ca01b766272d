/**
 * The services' desired state on disk: `<home>/services/_state.json` (a service name cannot
 * start with `_`, so no service directory collides with it), written atomically (temp
 * file, fsync, rename, directory fsync) with the previous copy kept as `_state.json.bak`.
 *
 * What is saved: each definition (its `env` included, which the docs say must hold no secrets),
 * whether it should run, and the ports it was given. What is never saved: the values of
 * `inheritEnv` variables. A file of another schema, or unreadable, is set aside (renamed) and
 * the backup tried; neither is ever overwritten with an empty list by a failed read.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedServiceDefinition } from '../../protocol/index.js';
import { writeFileAtomic } from '../fs-atomic.js';
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

  save(services: SavedService[]): void {
    const state: StateFile = { schema: STATE_SCHEMA, savedAt: new Date().toISOString(), services };
    writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`, { keepPrevious: true });
  }
}
