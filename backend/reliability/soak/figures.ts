/**
 * The soak's figures: latencies kept per minute-window (a bounded sample each), memory sampled at
 * each window's end, and the judgement "flat or creeping" from the first window after warm-up to
 * the last. Pure: no I/O, no clock.
 */

/** At most this many latencies are kept per series and window (a uniform sample past it). */
const MAX_SAMPLES = 50_000;

export class LatencySeries {
  private readonly samples: number[] = [];
  private seen = 0;
  constructor(private readonly random: () => number) {}

  add(ms: number): void {
    this.seen++;
    if (this.samples.length < MAX_SAMPLES) {
      this.samples.push(ms);
      return;
    }
    // Reservoir sampling: every latency of the window has the same chance to be kept.
    const at = Math.floor(this.random() * this.seen);
    if (at < MAX_SAMPLES) this.samples[at] = ms;
  }

  get count(): number {
    return this.seen;
  }

  percentile(p: number): number {
    if (this.samples.length === 0) return Number.NaN;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  }
}

export interface MemorySample {
  heapUsedMb: number;
  rssMb: number;
  externalMb: number;
  arrayBuffersMb: number;
}

export interface WindowFigures {
  index: number;
  /** Seconds since the soak started, at the window's end. */
  endSec: number;
  operations: number;
  operationsPerSec: number;
  /** Every HTTP call the agents made (their operations are one or several each). */
  http: { count: number; p50: number; p95: number; p99: number };
  /** Per operation kind: count and p95 (ms). */
  byOperation: Record<string, { count: number; p95: number }>;
  /** Refusals and failures by catalogue name (expected ones included: a deposit used up, a timer). */
  errors: Record<string, number>;
  memory: MemorySample;
  /** A GC ran before the memory sample (node --expose-gc). */
  afterGc: boolean;
}

export interface Limits {
  /** Largest allowed growth of heap used, last window over the first after warm-up (0.2 = 20%). */
  heapGrowth: number;
  /** Largest allowed growth of the HTTP p95 latency, last window over the first after warm-up. */
  p95Growth: number;
}

export interface Judgement {
  ok: boolean;
  reasons: string[];
  /** Which window is the baseline (the first after warm-up) and the growths measured. */
  baseline: number;
  heapGrowth: number;
  p95Growth: number;
}

/**
 * Flat or creeping: the last window against the first after `warmupWindows`. A p95 under 5 ms
 * counts as 5 ms, so noise on a fast path (2 ms → 3 ms) is not called a creep.
 */
export function judge(windows: ReadonlyArray<WindowFigures>, limits: Limits, warmupWindows = 1): Judgement {
  const reasons: string[] = [];
  if (windows.length < 2) return { ok: false, reasons: ['fewer than two windows: run longer'], baseline: 0, heapGrowth: 0, p95Growth: 0 };
  const baseline = Math.min(warmupWindows, windows.length - 2);
  const base = windows[baseline]!;
  const last = windows[windows.length - 1]!;
  const heapGrowth = (last.memory.heapUsedMb - base.memory.heapUsedMb) / base.memory.heapUsedMb;
  const p95Growth = (Math.max(5, last.http.p95) - Math.max(5, base.http.p95)) / Math.max(5, base.http.p95);
  if (heapGrowth > limits.heapGrowth) {
    reasons.push(
      `heap used grew ${(heapGrowth * 100).toFixed(1)}% (window ${base.index}: ${base.memory.heapUsedMb.toFixed(1)} MB → window ${last.index}: ${last.memory.heapUsedMb.toFixed(1)} MB), over the ${(limits.heapGrowth * 100).toFixed(0)}% allowed`,
    );
  }
  if (p95Growth > limits.p95Growth) {
    reasons.push(
      `HTTP p95 latency grew ${(p95Growth * 100).toFixed(1)}% (window ${base.index}: ${base.http.p95.toFixed(1)} ms → window ${last.index}: ${last.http.p95.toFixed(1)} ms), over the ${(limits.p95Growth * 100).toFixed(0)}% allowed`,
    );
  }
  if (last.operations === 0) reasons.push(`no operation completed in the last window`);
  return { ok: reasons.length === 0, reasons, baseline, heapGrowth, p95Growth };
}

const pad = (s: string, n: number) => s.padStart(n);
const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(1));

/** The figures as a table, one row per window. */
export function formatTable(windows: ReadonlyArray<WindowFigures>): string {
  const head = ['win', 't(s)', 'ops', 'ops/s', 'http n', 'p50 ms', 'p95 ms', 'p99 ms', 'buy p95', 'heap MB', 'rss MB', 'ext MB', 'refusals'];
  const widths = [3, 6, 7, 7, 8, 7, 7, 7, 8, 8, 8, 7, 0];
  const rows = windows.map((w) => [
    String(w.index),
    w.endSec.toFixed(0),
    String(w.operations),
    w.operationsPerSec.toFixed(1),
    String(w.http.count),
    ms(w.http.p50),
    ms(w.http.p95),
    ms(w.http.p99),
    ms(w.byOperation.buy?.p95 ?? Number.NaN),
    w.memory.heapUsedMb.toFixed(1),
    w.memory.rssMb.toFixed(1),
    w.memory.externalMb.toFixed(1),
    Object.entries(w.errors)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ') || '-',
  ]);
  return [head, ...rows].map((r) => r.map((c, i) => (widths[i] ? pad(c, widths[i]!) : ` ${c}`)).join(' ')).join('\n');
}
