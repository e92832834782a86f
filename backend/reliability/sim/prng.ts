/**
 * The simulator's one source of decisions: a small seeded generator (xoshiro128**, seeded by
 * splitmix32), so one seed fixes one whole history. Separate streams (`fork`) keep the
 * scheduler's draws apart from the bytes the product code asks for (ids, salts): a change in how
 * many random bytes the product draws does not shift every later decision of the scheduler.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** In [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.float() * items.length)]!;
  }

  /** One of `weights`' keys, with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as Array<[K, number]>;
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let r = this.float() * total;
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1]![0];
  }

  /** An independent stream derived from this one. */
  fork(): Prng {
    return new Prng(this.u32());
  }

  fill(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += 4) {
      const v = this.u32();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (v >>> (8 * j)) & 0xff;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Route `crypto.getRandomValues` (message ids, nonces, salts, pseudonyms — the random bytes that
 * can steer an order) and `Math.random` (back-off jitter) through a seeded stream while a run lasts, so a seed replays exactly. Key
 * generation and ECDSA signatures stay random (OpenSSL's own source): nothing branches on them.
 * Returns the function that puts the platform's source back.
 */
export function seedPlatformRandom(prng: Prng): () => void {
  const c = globalThis.crypto;
  const original = c.getRandomValues;
  const originalMath = Math.random;
  // Back-off jitter (billing outbox, settlement retries) draws from Math.random.
  Math.random = () => prng.float();
  Object.defineProperty(c, 'getRandomValues', {
    configurable: true,
    writable: true,
    value: <T extends ArrayBufferView | null>(array: T): T => {
      if (array) prng.fill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
  });
  return () => {
    Math.random = originalMath;
    Object.defineProperty(c, 'getRandomValues', { configurable: true, writable: true, value: original });
  };
}
