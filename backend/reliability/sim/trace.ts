import type { FaultKind } from './faults.ts';

/**
 * What happened in one run, step by step: each step's action and outcome, and the faults injected
 * during it. A failing seed prints this (up to the violation) so a person can follow the history.
 */
export class Trace {
  readonly lines: string[] = [];
  step = 0;
  /** Faults injected during the current step. */
  faultsThisStep = 0;

  begin(step: number, action: string): void {
    this.step = step;
    this.faultsThisStep = 0;
    this.lines.push(`#${step} ${action}`);
  }

  note(text: string): void {
    this.lines.push(`    ${text}`);
  }

  fault(kind: FaultKind, what: string): void {
    this.faultsThisStep++;
    this.lines.push(`    fault ${kind}: ${what}`);
  }
}
