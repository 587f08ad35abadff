/** A small seeded generator (mulberry32): the same seed gives the same task set everywhere. */
export type Rng = () => number;

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi], both ends included, like Python's random.randint. */
export function randint(next: Rng, lo: number, hi: number): number {
  return lo + Math.floor(next() * (hi - lo + 1));
}

/** k distinct items of xs in random order, like Python's random.sample. */
export function sample<T>(next: Rng, xs: readonly T[], k: number): T[] {
  const pool = [...xs];
  const out: T[] = [];
  for (let i = 0; i < k && pool.length; i++) out.push(pool.splice(Math.floor(next() * pool.length), 1)[0]);
  return out;
}

export function shuffle<T>(next: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

export function choice<T>(next: Rng, xs: readonly T[]): T {
  return xs[Math.floor(next() * xs.length)];
}

/** A seed for one task's stream: the run's seed mixed with the task's name (FNV-1a), so that
 * tasks drawn with the same --seed do not repeat each other's needles. */
export function taskSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}
