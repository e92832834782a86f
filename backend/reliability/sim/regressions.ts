import type { RunOptions } from './run.ts';

/**
 * Seeds that once found a defect in the product, replayed by every quick run (with the options
 * they failed with, shrunk) so the defect stays fixed. Each names what it found and where it was
 * fixed. A seed's history depends on the simulator's own choices too (its actions and weights):
 * after changing those, check that each entry still reaches the state it names.
 */
export const REGRESSIONS: ReadonlyArray<{ seed: number; options: RunOptions; found: string }> = [
  {
    seed: 2,
    options: { steps: 23, shoppers: 6, faults: true },
    found:
      'A merchant record the acquirer refuses for good (SESSION_CLOSED: the initiation was undone after the ' +
      'merchant acknowledged it) was sent again every few minutes for ever, its session stuck "closing". ' +
      'Fixed in merchantAgent.ts trySend: a final refusal ends the record (operator state "refused").',
  },
];
