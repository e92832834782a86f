import { describe, expect, it } from 'vitest';
import { ObolError } from '../src/errors.ts';
import {
  parseSessionIdentity,
  parseTransactionIdentity,
  sessionIdentity,
  transactionIdentity,
} from '../src/identity.ts';

describe('identities', () => {
  it('SessionIdentity is AccountManagerIdentity.SequenceNumber1, TransactionIdentity adds SequenceNumber2', () => {
    const session = sessionIdentity('op-sek', 7n);
    expect(session).toBe('op-sek.7');
    const tx = transactionIdentity(session, 3);
    expect(tx).toBe('op-sek.7.3');
    expect(parseTransactionIdentity(tx)).toEqual({ operatorId: 'op-sek', seq1: 7n, seq2: 3n, sessionId: 'op-sek.7' });
    expect(parseSessionIdentity(session)).toEqual({ operatorId: 'op-sek', seq1: 7n });
  });

  it.each(['op-sek', 'op-sek.0', 'op-sek.01', 'OP.1', 'op-sek.1.', '.1', 'op sek.1', 'op-sek.-1', 'op-sek.1.1'])(
    'refuses %j as a SessionIdentity',
    (text) => {
      expect(() => parseSessionIdentity(text)).toThrow(ObolError);
    },
  );

  it.each(['op-sek.1', 'op-sek.1.0', 'op-sek.1.2.3', 'op-sek.1.x', 'op-sek.1.99999999999999999'])(
    'refuses %j as a TransactionIdentity',
    (text) => {
      try {
        parseTransactionIdentity(text);
        expect.unreachable();
      } catch (e) {
        expect((e as ObolError).name).toBe('INVALID_IDENTITY');
      }
    },
  );
});
