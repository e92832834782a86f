import type { Clock } from '@obol/protocol/clock';
import type { Http } from '@obol/protocol/http';
import { ObolError } from '@obol/protocol/errors';
import { bearerMatches } from '../http/secrets.ts';
import type { KeyRing } from '@obol/protocol/keys';
import type { WebCrypto } from '@obol/protocol/webcrypto';
import type { Db } from '../store/db.ts';
import type { Ledger } from '../store/ledger.ts';
import type { SealKeys } from '../store/sealedColumn.ts';
import type { OperatorConfig } from './config.ts';
import type { ExchangeTables } from './exchangeTables.ts';
import type { OperatorIdentity } from './identity.ts';
import type { PeerDirectory } from './peers.ts';

/** What every role of one operator shares: registered once on the Fastify instance. */
export interface OperatorContext {
  config: OperatorConfig;
  identity: OperatorIdentity;
  /** Our base URL as peers and wallets reach it. */
  url: string;
  db: Db;
  ledger: Ledger;
  clock: Clock;
  /**
   * How this operator calls other parties (peer operators, its merchants' modules): undici by
   * default; the reliability simulator hands in its simulated network.
   */
  http: Http;
  peers: PeerDirectory;
  tables: ExchangeTables;
  /** Keys of customers, merchants and session keys, imported once and kept (an import costs more than a verify). */
  keys: KeyRing;
  /**
   * The crypto every check and signature of this operator goes through: the servers' handle
   * (crypto/nodeCrypto.ts: ES256 and SHA-256 by node:crypto, the same bytes as WebCrypto's).
   */
  crypto: WebCrypto;
  /** The data key(s) secrets are sealed under in the database (K1): kept outside it, see sealedColumn.ts. */
  sealKeys: SealKeys;
  /** Names of the billing sinks records are queued for. */
  billingSinks: string[];
  /** Time after a session's timer before a silent side is settled without its record. */
  clearingGraceMs: number;
  /** The server's (pino) logger: timers log here what no request is there to answer for. */
  log: OperatorLog;
}

/** The part of a pino logger the operator's timers use. */
export interface OperatorLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: OperatorLog = { info() {}, warn() {}, error() {} };

/** Ledger account names, one place so both roles and the CLI agree. */
export const accounts = {
  customer: (customerId: string) => `customer:${customerId}`,
  merchant: (merchantId: string) => `merchant:${merchantId}`,
  /** What we and another operator owe each other, per currency. */
  peer: (operatorId: string, currency: string) => `peer:${operatorId}:${currency}`,
  fx: (currency: string) => `fx:${currency}`,
  funding: (currency: string) => `funding:${currency}`,
} as const;

/**
 * A deposit is a pending transfer of the ledger (reserved, then posted in full or in part, or
 * voided), not an account: its ids, one place for both roles and the CLI.
 */
export const deposits = {
  /** Customer side: customer → the merchant's operator (or FX), in the customer's currency. */
  customer: (transactionId: string) => `deposit:${transactionId}`,
  /** Merchant side: the customer's operator → the merchant, in the merchant's currency. */
  acquirer: (transactionId: string) => `acq-deposit:${transactionId}`,
} as const;

/**
 * How long after a session's last chance to clear a deposit stays reserved. Clearing normally
 * comes within the clearing grace; this only frees money whose clearing never came (the other
 * operator vanished), while leaving days for retries of a delayed one.
 */
export const DEPOSIT_CLEARING_WINDOW_MS = 7 * 86_400_000;

export function requireAdmin(ctx: OperatorContext, authorization: string | undefined): void {
  if (!bearerMatches(authorization, ctx.config.adminToken)) {
    throw new ObolError('UNAUTHORIZED', 'this is an operator administration call: the admin token is required');
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    obol: OperatorContext;
  }
}
