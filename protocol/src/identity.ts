import { ObolError } from './errors.ts';
import { type WebCrypto, defaultCrypto, randomId } from './webcrypto.ts';

/**
 * The seed's identities. An account manager (an operator) has a short id; a wallet's logged-on
 * relation with it is `AccountManagerIdentity.SequenceNumber1` (SessionIdentity); one deposit at
 * one merchant inside that session is `SessionIdentity.SequenceNumber2` (TransactionIdentity).
 * Sequence numbers come from the operator's database: positive decimal, no leading zeros.
 */
export type OperatorId = string;
export type SessionIdentity = string;
export type TransactionIdentity = string;

export const OPERATOR_ID_PATTERN = '^[a-z][a-z0-9-]{0,30}[a-z0-9]$';
const SEQ = '[1-9][0-9]{0,15}';
export const SESSION_ID_PATTERN = `^[a-z][a-z0-9-]{0,30}[a-z0-9]\\.${SEQ}$`;
export const TRANSACTION_ID_PATTERN = `^[a-z][a-z0-9-]{0,30}[a-z0-9]\\.${SEQ}\\.${SEQ}$`;

const operatorRe = new RegExp(OPERATOR_ID_PATTERN);
const sessionRe = new RegExp(SESSION_ID_PATTERN);
const transactionRe = new RegExp(TRANSACTION_ID_PATTERN);

export function isOperatorId(text: string): boolean {
  return operatorRe.test(text);
}

export interface ParsedSession {
  operatorId: OperatorId;
  seq1: bigint;
}
export interface ParsedTransaction extends ParsedSession {
  sessionId: SessionIdentity;
  seq2: bigint;
}

function requireSeq(n: bigint | number): bigint {
  const v = BigInt(n);
  if (v < 1n || v > 9_999_999_999_999_999n) throw new ObolError('INVALID_IDENTITY', `sequence number out of range: ${v}`);
  return v;
}

export function sessionIdentity(operatorId: OperatorId, seq1: bigint | number): SessionIdentity {
  if (!isOperatorId(operatorId)) throw new ObolError('INVALID_IDENTITY', `not an operator id: ${JSON.stringify(operatorId)}`);
  return `${operatorId}.${requireSeq(seq1)}`;
}

export function transactionIdentity(sessionId: SessionIdentity, seq2: bigint | number): TransactionIdentity {
  parseSessionIdentity(sessionId);
  return `${sessionId}.${requireSeq(seq2)}`;
}

export function parseSessionIdentity(text: string): ParsedSession {
  if (typeof text !== 'string' || !sessionRe.test(text)) {
    throw new ObolError('INVALID_IDENTITY', `not a SessionIdentity (operator.seq1): ${JSON.stringify(text)}`);
  }
  const dot = text.lastIndexOf('.');
  return { operatorId: text.slice(0, dot), seq1: BigInt(text.slice(dot + 1)) };
}

export function parseTransactionIdentity(text: string): ParsedTransaction {
  if (typeof text !== 'string' || !transactionRe.test(text)) {
    throw new ObolError('INVALID_IDENTITY', `not a TransactionIdentity (operator.seq1.seq2): ${JSON.stringify(text)}`);
  }
  const [operatorId, s1, s2] = text.split('.') as [string, string, string];
  return { operatorId, seq1: BigInt(s1), seq2: BigInt(s2), sessionId: `${operatorId}.${s1}` };
}

/**
 * The trade handle: how a transaction is known outside the customer's account manager — to the
 * acquirer, the merchant, the arbiter, and in every message the wallet exchanges with the merchant.
 * `t-` and 128 random bits (base64url), made fresh per transaction: unlike the TransactionIdentity
 * (`operator.session.n`), two handles of one logon share nothing, so merchants and their operator
 * cannot link the deposits of one shopper. Only the account manager keeps the mapping.
 */
export type TradeHandle = string;
export const TRADE_HANDLE_PATTERN = '^t-[A-Za-z0-9_-]{22}$';
const tradeHandleRe = new RegExp(TRADE_HANDLE_PATTERN);

export function isTradeHandle(text: unknown): text is TradeHandle {
  return typeof text === 'string' && tradeHandleRe.test(text);
}

export function parseTradeHandle(text: string): TradeHandle {
  if (!isTradeHandle(text)) throw new ObolError('INVALID_IDENTITY', `not a trade handle (t- and 22 base64url characters): ${JSON.stringify(String(text).slice(0, 80))}`);
  return text;
}

/** A fresh trade handle from 16 random bytes. */
export function newTradeHandle(crypto: WebCrypto = defaultCrypto()): TradeHandle {
  return `t-${randomId(16, crypto)}`;
}
