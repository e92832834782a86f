import type { RunOptions } from './run.ts';

/**
 * Seeds that once found a defect in the product, replayed by every quick run (with the options
 * they failed with) so the defect stays fixed. Each names what it found and where it was fixed.
 */
export const REGRESSIONS: ReadonlyArray<{ seed: number; options: RunOptions; found: string }> = [];
