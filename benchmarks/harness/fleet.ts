/**
 * Many client processes that start a round of work at one moment: the fanin and headofline
 * questions. The members are fleet-client.js or fleet-raw-client.js (contract in
 * programs/fleet.ts): each connects once, then per round prints `ready`, begins on `go`, ends an
 * open-ended task on `stop` and prints the round's figures as one JSON line; `exit` ends it.
 *
 * A fleet lives across the repetitions of a case (a hundred processes take many seconds to start
 * on two cores, and what they stand for, training loops, are long-lived); `Fleets` keeps the
 * current case's fleets and replaces them when the next case asks. Whoever holds a `Fleets` must
 * `destroyAll()` it in teardown. A round that fails or runs past its deadline destroys its fleet
 * (kills the members: their state is unknown) and rethrows. If the harness itself dies, the
 * members' stdin ends and they leave.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { programsDir } from './child.js';

export interface Member<T> {
  /** Tells it to begin the round (writes `go`). */
  go(): void;
  /** Tells an open-ended task to end (writes `stop`). */
  stop(): void;
  /** The figures of its current round, once it prints them. */
  result(): Promise<T>;
}

export interface Fleet<T> {
  readonly members: ReadonlyArray<Member<T>>;
  /**
   * Runs one round: waits until all are ready, then `body`; within `deadlineMs`, or the fleet is
   * destroyed. Any failure destroys the fleet and rethrows.
   */
  round<R>(deadlineMs: number, body: (members: ReadonlyArray<Member<T>>) => Promise<R>): Promise<R>;
  readonly destroyed: boolean;
  /** Asks every member to exit, kills those still there after 10 s, resolves once all are gone. Idempotent. */
  destroy(): Promise<void>;
}

const EXIT_GRACE_MS = 10_000;

/** Starts one `program` per spec, all at once; resolves once all are ready, or destroys them and rejects. */
export async function launchFleet<T>(program: string, specs: readonly unknown[], readyDeadlineMs: number): Promise<Fleet<T>> {
  const launched = specs.map((spec) => launch<T>(program, spec));
  let destroying: Promise<void> | null = null;
  const destroy = () =>
    (destroying ??= (async () => {
      for (const l of launched) l.exit();
      const timer = setTimeout(() => launched.forEach((l) => l.kill()), EXIT_GRACE_MS);
      await Promise.all(launched.map((l) => l.closed));
      clearTimeout(timer);
    })());
  const within = async <R>(deadlineMs: number, what: string, work: () => Promise<R>): Promise<R> => {
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${program}: ${what} took longer than ${deadlineMs} ms`)), deadlineMs);
    });
    try {
      return await Promise.race([work(), overrun]);
    } catch (error) {
      launched.forEach((l) => l.kill());
      await destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  const members = launched.map((l) => l.member);
  const ready = () => Promise.all(launched.map((l) => l.ready())).then(() => {});
  // The first round's `ready` is the one launchFleet waits for.
  let primed = false;
  const fleet: Fleet<T> = {
    members,
    round: (deadlineMs, body) => within(deadlineMs, 'a round', async () => {
      if (!primed) await ready();
      primed = false;
      return body(members);
    }),
    get destroyed() {
      return destroying !== null;
    },
    destroy,
  };
  await within(readyDeadlineMs, `starting ${specs.length} members`, ready);
  primed = true;
  return fleet;
}

interface Launched<T> {
  member: Member<T>;
  /** Its next `ready` line. */
  ready(): Promise<true>;
  closed: Promise<void>;
  /** Writes `exit`; it finishes its run and leaves. */
  exit(): void;
  kill(): void;
}

function launch<T>(program: string, spec: unknown): Launched<T> {
  const child: ChildProcess = spawn(process.execPath, [`${programsDir}${program}`, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stdin = child.stdin as NonNullable<ChildProcess['stdin']>;
  stdin.on('error', () => {}); // EPIPE once it has gone: its exit reports why
  const readies = new Inbox<true>();
  const results = new Inbox<T>();
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    for (let end = out.indexOf('\n'); end >= 0; end = out.indexOf('\n')) {
      const line = out.slice(0, end);
      out = out.slice(end + 1);
      if (line === 'ready') readies.push(true);
      else {
        try {
          results.push(JSON.parse(line) as T);
        } catch {
          results.fail(new Error(`${program} printed \`${line}\`, neither \`ready\` nor a JSON result`));
        }
      }
    }
  });
  const closed = new Promise<void>((resolve) => {
    const gone = (why: string) => {
      const error = new Error(`${program} ${JSON.stringify(spec)} ${why}: ${err.trim() || out.trim() || '(no output)'}`);
      readies.fail(error);
      results.fail(error);
      resolve();
    };
    // 'close', not 'exit': only then has all it printed been read.
    child.once('close', (code, signal) => gone(`exited with ${signal ?? code}`));
    child.once('error', (error) => gone(`could not start (${error.message})`));
  });
  const say = (word: string) => stdin.writable && stdin.write(`${word}\n`);
  return {
    member: { go: () => say('go'), stop: () => say('stop'), result: () => results.take() },
    ready: () => readies.take(),
    closed,
    exit: () => say('exit'),
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Lines a member printed, taken in order; once it has gone, taking more rejects with why. */
class Inbox<T> {
  #items: T[] = [];
  #waiting: Array<{ resolve(item: T): void; reject(error: Error): void }> = [];
  #failure: Error | null = null;

  push(item: T): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(item);
    else this.#items.push(item);
  }

  fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }

  take(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift() as T);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }
}

/**
 * The fleets of the case being measured, one per variant, kept across its repetitions. Asking for
 * another case's fleet destroys the ones held first, so at most one case's processes are alive.
 */
export class Fleets {
  #case: string | null = null;
  #held = new Map<string, Fleet<unknown>>();

  /** The fleet of `caseName`/`variant`, launched by `launch` the first time (or after it was destroyed). */
  async get<T>(caseName: string, variant: string, launch: () => Promise<Fleet<T>>): Promise<Fleet<T>> {
    if (this.#case !== caseName) {
      await this.destroyAll();
      this.#case = caseName;
    }
    const held = this.#held.get(variant) as Fleet<T> | undefined;
    if (held && !held.destroyed) return held;
    const fleet = await launch();
    this.#held.set(variant, fleet as Fleet<unknown>);
    return fleet;
  }

  async destroyAll(): Promise<void> {
    const fleets = [...this.#held.values()];
    this.#held.clear();
    this.#case = null;
    await Promise.all(fleets.map((f) => f.destroy()));
  }
}
