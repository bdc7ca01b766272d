/**
 * The chaos suite's only source of randomness: a seeded xoroshiro128+ (pure-rand). Every random
 * choice of a run (which process to kill, when, with which signal; every fuzz case) is drawn
 * from one of these, so a seed names a schedule. What the processes do in between is up to the
 * OS scheduler, so a seed repeats the schedule, not the exact interleaving.
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

type Generator = ReturnType<typeof xoroshiro128plus>;

export class Rng {
  readonly seed: number;
  readonly #g: Generator;

  constructor(seed: number) {
    this.seed = seed;
    this.#g = xoroshiro128plus(seed);
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return uniformInt(this.#g, min, max);
  }

  /** A float in [0, 1). */
  float(): number {
    return uniformInt(this.#g, 0, 0x7fffffff) / 0x80000000;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }

  /**
   * A generator of its own, derived from this one's next draw: give one to each part of a run so
   * that adding a draw in one part does not shift the schedule of another.
   */
  fork(): Rng {
    return new Rng(this.int(0, 0x7fffffff));
  }
}
