import { describe, expect, it } from 'vitest';
import { SESSION_READ_SCHEME, sessionReadAuthorization, sessionReadFromAuthorization } from '../src/api.ts';
import { generateSigningKeyPair, keyHandle } from '../src/keys.ts';
import { signMessage, verifyMessage } from '../src/signed.ts';

/** The wallet's signed session read, as it travels in an `authorization` header. */
describe('session read header', () => {
  it('carries the signed read intact, and nothing else counts as one', async () => {
    const key = await keyHandle(await generateSigningKeyPair());
    const read = await signMessage('wallet.sessionRead', { msgId: 'abcdefghijklmnop', transactionId: 't-q8VbZmC3Tzm1cS0xQ5m9Lw', time: 1_790_000_000_000 }, key.signer);
    const header = sessionReadAuthorization(read);
    expect(header.startsWith(`${SESSION_READ_SCHEME} `)).toBe(true);
    const back = sessionReadFromAuthorization(header);
    expect(back).toEqual(read);
    expect((await verifyMessage(back, 'wallet.sessionRead', (kid) => (kid === key.kid ? key.publicKey : undefined))).body.transactionId).toBe('t-q8VbZmC3Tzm1cS0xQ5m9Lw');

    for (const junk of [undefined, '', 'Bearer abc', `${SESSION_READ_SCHEME}`, `${SESSION_READ_SCHEME} `, `${SESSION_READ_SCHEME} not+base64`, `${SESSION_READ_SCHEME} bm90IGpzb24`, `${SESSION_READ_SCHEME} ${'A'.repeat(5000)}`]) {
      expect(sessionReadFromAuthorization(junk)).toBeUndefined();
    }
  });

  it('is refused as any other message type', async () => {
    const key = await keyHandle(await generateSigningKeyPair());
    const stop = await signMessage('wallet.stop', { msgId: 'abcdefghijklmnop', transactionId: 't-q8VbZmC3Tzm1cS0xQ5m9Lw', reason: 'wallet', time: 1 }, key.signer);
    const back = sessionReadFromAuthorization(`${SESSION_READ_SCHEME} ${Buffer.from(JSON.stringify(stop)).toString('base64url')}`);
    await expect(verifyMessage(back, 'wallet.sessionRead', () => key.publicKey)).rejects.toMatchObject({ name: 'WRONG_MESSAGE_TYPE' });
  });
});
