import { describe, expect, it } from 'vitest';
import { LatencySeries, type WindowFigures, formatTable, judge } from '../reliability/soak/figures.ts';

/** The soak's judgement (backend/reliability/soak): flat passes, a creep in memory or latency fails with the reason. */
function window(index: number, heapUsedMb: number, p95: number): WindowFigures {
  return {
    index,
    endSec: (index + 1) * 60,
    operations: 100,
    operationsPerSec: 100 / 60,
    http: { count: 300, p50: p95 / 3, p95, p99: p95 * 1.5 },
    byOperation: { buy: { count: 50, p95: p95 * 2 } },
    errors: {},
    memory: { heapUsedMb, rssMb: heapUsedMb * 3, externalMb: 10, arrayBuffersMb: 1 },
    afterGc: true,
  };
}
const limits = { heapGrowth: 0.2, p95Growth: 0.5 };

describe('the soak judges memory and latency from the first window after warm-up to the last', () => {
  it('flat figures pass; the warm-up window is not the baseline', () => {
    const j = judge([window(0, 30, 100), window(1, 60, 40), window(2, 62, 45), window(3, 63, 50)], limits);
    expect(j).toMatchObject({ ok: true, baseline: 1 });
    expect(j.heapGrowth).toBeCloseTo(0.05);
  });

  it('a heap that grows past 20% fails, with the figures in the reason', () => {
    const j = judge([window(0, 50, 40), window(1, 60, 40), window(2, 70, 40), window(3, 80, 40)], limits);
    expect(j.ok).toBe(false);
    expect(j.reasons.join()).toMatch(/heap used grew 33\.3% .*60\.0 MB → window 3: 80\.0 MB/);
  });

  it('a p95 that grows past 50% fails; noise under 5 ms does not', () => {
    expect(judge([window(0, 60, 40), window(1, 60, 40), window(2, 60, 70)], limits).reasons.join()).toMatch(/p95 latency grew 75\.0%/);
    expect(judge([window(0, 60, 2), window(1, 60, 2), window(2, 60, 4.5)], limits).ok).toBe(true);
  });

  it('one window is not enough to judge', () => {
    expect(judge([window(0, 60, 40)], limits).ok).toBe(false);
  });

  it('percentiles over a bounded sample, and a table with a row per window', () => {
    const s = new LatencySeries(() => 0.5);
    for (let i = 1; i <= 100; i++) s.add(i);
    expect([s.percentile(50), s.percentile(95), s.percentile(99), s.count]).toEqual([50, 95, 99, 100]);
    const table = formatTable([window(0, 60, 40), window(1, 61, 41)]).split('\n');
    expect(table).toHaveLength(3);
    expect(table[0]).toMatch(/p95 ms/);
  });
});
