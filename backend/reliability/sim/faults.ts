/**
 * What can go wrong, and how often: the probabilities the network and the scheduler draw against.
 * Each kind of fault is counted when it is injected, so the summary says what a run survived.
 */
export interface FaultRates {
  /** A request never arrives (the caller sees UNAVAILABLE). */
  drop: number;
  /** The request is held back and arrives later, after others (the caller gives up: TIMEOUT). */
  reorder: number;
  /** The request arrives now, and a copy of it again later. */
  duplicate: number;
  /** The request arrives and is handled, the answer is lost (the caller sees TIMEOUT). */
  loseResponse: number;
  /** The request takes a while: the clock moves up to `maxDelayMs` before it arrives. */
  delay: number;
  maxDelayMs: number;
  /** The receiver handles the request, then crashes before answering (it restarts on its store). */
  crashAfterCommit: number;
  /** The sending wallet crashes while it waits for the answer (the request may have arrived). */
  walletCrashInFlight: number;
  /** A billing sink fails a delivery (nothing stored). */
  sinkFail: number;
  /** A billing sink stores a record and the acknowledgement is lost (the outbox delivers it again). */
  sinkLoseAck: number;
}

export const FAULTS: FaultRates = {
  drop: 0.03,
  reorder: 0.02,
  duplicate: 0.03,
  loseResponse: 0.03,
  delay: 0.05,
  maxDelayMs: 20_000,
  crashAfterCommit: 0.01,
  walletCrashInFlight: 0.01,
  sinkFail: 0.1,
  sinkLoseAck: 0.1,
};

export const NO_FAULTS: FaultRates = {
  drop: 0,
  reorder: 0,
  duplicate: 0,
  loseResponse: 0,
  delay: 0,
  maxDelayMs: 0,
  crashAfterCommit: 0,
  walletCrashInFlight: 0,
  sinkFail: 0,
  sinkLoseAck: 0,
};

export type FaultKind =
  | 'drop'
  | 'reorder'
  | 'duplicate'
  | 'lose-response'
  | 'delay'
  | 'crash-after-commit'
  | 'wallet-crash-in-flight'
  | 'sink-fail'
  | 'sink-lose-ack'
  | 'crash'
  | 'vanish';

/** Counters of one run (summed over seeds by main). */
export interface RunStats {
  steps: number;
  messages: number;
  faults: number;
  crashes: number;
  byFault: Partial<Record<FaultKind, number>>;
  purchases: number;
  deposits: number;
  refusedByFault: number;
  /** Claims a merchant forfeited by being away past a deadline (the stated rule, not money lost). */
  forfeited: number;
  /** The most deposits one logon (SessionIdentity) opened. */
  maxDepositsPerLogon: number;
  /** Refunds after clearing the shops asked for and got an answer to. */
  refunds: number;
}

export function newStats(): RunStats {
  return { steps: 0, messages: 0, faults: 0, crashes: 0, byFault: {}, purchases: 0, deposits: 0, refusedByFault: 0, forfeited: 0, maxDepositsPerLogon: 0, refunds: 0 };
}

export function countFault(stats: RunStats, kind: FaultKind): void {
  stats.faults++;
  stats.byFault[kind] = (stats.byFault[kind] ?? 0) + 1;
  if (kind === 'crash' || kind === 'crash-after-commit' || kind === 'wallet-crash-in-flight') stats.crashes++;
}
