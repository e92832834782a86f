import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BILLING_TRANSACTION_ID_MAX,
  billingRecordId,
  depositRecordId,
  parseBillingRecordId,
  refundRecordId,
  withdrawalRecordId,
} from '../src/billingIds.ts';
import { ObolError } from '../src/errors.ts';
import { sessionIdentity, transactionIdentity } from '../src/identity.ts';
import { checkMessageBody } from '../src/messages.ts';
import { toBase64Url } from '../src/webcrypto.ts';

/**
 * A billing system deduplicates on the record id, so two records must never share one: for every
 * transaction id the system can make (any operator id length, any sequence numbers) and for any
 * opaque handle of [A-Za-z0-9._-] that may stand for a transaction, the id is injective, and
 * the record schema accepts it.
 */
const operatorIds = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'), maxLength: 30 }),
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
  )
  .map(([a, mid, z]) => `${a}${mid}${z}`);
const seq = fc.bigInt({ min: 1n, max: 9_999_999_999_999_999n });
const transactionIds = fc.tuple(operatorIds, seq, seq).map(([op, s1, s2]) => transactionIdentity(sessionIdentity(op, s1), s2));
const handles = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-'),
  minLength: 1,
  maxLength: BILLING_TRANSACTION_ID_MAX,
});
/** Trade handles as the account manager makes them: `t-` and 16 random bytes, base64url. */
const tradeHandles = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => `t-${toBase64Url(b)}`);
const anyId = fc.oneof(transactionIds, handles, tradeHandles);

describe('billing record ids', () => {
  it('the 1st, 10th and 100th deposit of a logon have three different ids (they used to collide)', () => {
    const ids = ['op-sek.1.1', 'op-sek.1.10', 'op-sek.1.100', 'op-sek.11.1', 'op-sek.1.11'].map(depositRecordId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is injective: the transaction id comes back from the record id, for every id and kind', () => {
    fc.assert(
      fc.property(anyId, fc.constantFrom('deposit' as const, 'withdrawal' as const), (id, kind) => {
        expect(parseBillingRecordId(billingRecordId(kind, id))).toEqual({ kind, transactionId: id });
      }),
      { numRuns: 2000 },
    );
  });

  it('two different transactions (or kinds) never share a record id', () => {
    fc.assert(
      fc.property(anyId, anyId, (a, b) => {
        fc.pre(a !== b);
        expect(depositRecordId(a)).not.toBe(depositRecordId(b));
        expect(withdrawalRecordId(a)).not.toBe(withdrawalRecordId(b));
        expect(withdrawalRecordId(a)).not.toBe(depositRecordId(b));
        expect(withdrawalRecordId(a)).not.toBe(depositRecordId(a));
      }),
      { numRuns: 2000 },
    );
  });

  it('every id made from a TransactionIdentity or a trade handle passes the billing record schema', () => {
    // The customer's operator bills its TransactionIdentity (with the handle beside it); the
    // merchant's operator knows the transaction by its trade handle only.
    fc.assert(
      fc.property(transactionIds, tradeHandles, (transactionId, handle) => {
        const withdrawal = {
          recordId: withdrawalRecordId(transactionId),
          operatorId: 'op-sek',
          customerId: 'customer-1',
          transactionId,
          handle,
          merchantOperatorId: 'op-eur',
          amount: 'SEK:0.34',
          amountMerchant: 'EUR:0.03',
          rate: '0.0874',
          count: 1,
          purchasesHash: 'A'.repeat(43),
          flagged: false,
          time: 0,
        };
        expect(() => checkMessageBody('am.withdrawal', withdrawal)).not.toThrow();
        const deposit = {
          recordId: depositRecordId(handle),
          operatorId: 'op-eur',
          merchantId: 'news.example',
          transactionId: handle,
          amount: 'EUR:0.03',
          count: 1,
          purchasesHash: 'A'.repeat(43),
          flagged: false,
          time: 0,
        };
        expect(() => checkMessageBody('am.deposit', deposit)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });

  it.each(['', 'op sek.1.1', 'op-sek.1.1\u0000', 'x'.repeat(BILLING_TRANSACTION_ID_MAX + 1), 'a/b'])(
    'refuses to build an id it could not invert: %j',
    (bad) => {
      expect(() => depositRecordId(bad)).toThrow(ObolError);
    },
  );
});

describe('refund record ids', () => {
  it('carry the transaction and the refund number, apart from every deposit and withdrawal id', () => {
    fc.assert(
      fc.property(transactionIds, fc.integer({ min: 1, max: 1_000_000 }), (tid, n) => {
        const id = refundRecordId(tid, n);
        expect(id).toBe(`r.${tid}.${n}`);
        expect(parseBillingRecordId(id)).toEqual({ kind: 'refund', transactionId: `${tid}.${n}` });
        expect(id).not.toBe(depositRecordId(tid));
        expect(id).not.toBe(withdrawalRecordId(tid));
      }),
    );
    expect(() => refundRecordId('op-sek.1.1', 0)).toThrow(ObolError);
  });
});
