import { describe, expect, it } from 'vitest';
import { Crypto as PeculiarCrypto } from '@peculiar/webcrypto';
import { ObolError } from '../src/errors.ts';
import { KeyRing, generateSigningKeyPair, keyHandle } from '../src/keys.ts';
import type { MessageBody } from '../src/messages.ts';
import { signMessage, verifyMessage } from '../src/signed.ts';
import { canonicalJson } from '../src/canonicalJson.ts';
import type { WebCrypto } from '../src/webcrypto.ts';

const order: MessageBody<'wallet.order'> = {
  transactionId: 't-q8VbZmC3Tzm1cS0xQ5m9Lw',
  n: 1,
  productId: 'article-42',
  price: 'EUR:0.03',
  origin: 'https://news.example',
    listSalt: 'c2FsdHNhbHRzYWx0c2FsdA',
  time: 1_790_000_000_000,
};

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
  return 'accepted';
}

describe.each([
  ['node crypto.subtle', globalThis.crypto as WebCrypto],
  ['@peculiar/webcrypto', new PeculiarCrypto() as unknown as WebCrypto],
])('signed messages with %s', (_name, crypto) => {
  it('a wallet order signed with the session key verifies and comes back typed', async () => {
    const key = await keyHandle(await generateSigningKeyPair(false, crypto), crypto);
    const ring = new KeyRing(crypto);
    expect(await ring.addSpki(key.publicKeySpki)).toBe(key.kid);
    const signed = await signMessage('wallet.order', order, key.signer);
    const checked = await verifyMessage(JSON.parse(JSON.stringify(signed)), 'wallet.order', ring.resolve, crypto);
    expect(checked.body.price).toBe('EUR:0.03');
  });

  it('refuses one changed byte, another key, a wrong message type, an unknown key, a malformed body', async () => {
    const key = await keyHandle(await generateSigningKeyPair(false, crypto), crypto);
    const other = await keyHandle(await generateSigningKeyPair(false, crypto), crypto);
    const ring = new KeyRing(crypto);
    await ring.addSpki(key.publicKeySpki);
    const signed = await signMessage('wallet.order', order, key.signer);

    const tamperedPrice = { ...signed, body: { ...signed.body, price: 'EUR:0.04' } };
    expect(await code(verifyMessage(tamperedPrice, 'wallet.order', ring.resolve, crypto))).toBe('BAD_SIGNATURE');

    const sigBytes = signed.sig.split('');
    sigBytes[10] = sigBytes[10] === 'A' ? 'B' : 'A';
    const tamperedSig = { ...signed, sig: sigBytes.join('') };
    expect(await code(verifyMessage(tamperedSig, 'wallet.order', ring.resolve, crypto))).toBe('BAD_SIGNATURE');

    // Signed by another key but claiming ours.
    const forged = await signMessage('wallet.order', order, { kid: key.kid, sign: other.signer.sign });
    expect(await code(verifyMessage(forged, 'wallet.order', ring.resolve, crypto))).toBe('BAD_SIGNATURE');

    // Signed by a key nobody trusts.
    const stranger = await signMessage('wallet.order', order, other.signer);
    expect(await code(verifyMessage(stranger, 'wallet.order', ring.resolve, crypto))).toBe('UNKNOWN_KEY');

    // A valid order can not be passed off as another message type, relabelled or not.
    expect(await code(verifyMessage(signed, 'wallet.accept', ring.resolve, crypto))).toBe('WRONG_MESSAGE_TYPE');
    const relabelled = { ...signed, type: 'wallet.accept' };
    expect(await code(verifyMessage(relabelled, 'wallet.accept', ring.resolve, crypto))).toBe('BAD_SIGNATURE');

    expect(await code(verifyMessage({ ...signed, extra: 1 }, 'wallet.order', ring.resolve, crypto))).toBe('MALFORMED');
    expect(await code(verifyMessage('hello', 'wallet.order', ring.resolve, crypto))).toBe('MALFORMED');
  });
});

describe('signing refuses to produce what peers would refuse', () => {
  it('a body that breaks its schema is never signed', async () => {
    const key = await keyHandle(await generateSigningKeyPair());
    const bad = { ...order, price: '0.03 EUR' } as unknown as MessageBody<'wallet.order'>;
    expect(await code(signMessage('wallet.order', bad, key.signer))).toBe('MALFORMED');
    const extra = { ...order, note: 'x' } as unknown as MessageBody<'wallet.order'>;
    expect(await code(signMessage('wallet.order', extra, key.signer))).toBe('MALFORMED');
  });
});

describe('canonical JSON (RFC 8785)', () => {
  it('orders keys and normalises numbers so both sides sign the same bytes', () => {
    expect(canonicalJson({ b: 1, a: [3, { d: 1e2, c: 'x' }] })).toBe('{"a":[3,{"c":"x","d":100}],"b":1}');
    expect(canonicalJson({ a: 'é', b: '\u2028' })).toBe('{"a":"é","b":"\u2028"}');
  });
  it('refuses what JSON cannot carry exactly', () => {
    expect(() => canonicalJson({ a: 1n })).toThrow(ObolError);
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(ObolError);
  });
});

describe('the key ring', () => {
  it('keeps at most its bound, dropping the oldest key first', async () => {
    const ring = new KeyRing(globalThis.crypto as WebCrypto, 2);
    const keys = await Promise.all([1, 2, 3].map(async () => keyHandle(await generateSigningKeyPair())));
    for (const k of keys) await ring.addSpki(k.publicKeySpki);
    expect(ring.get(keys[0]!.kid)).toBeUndefined();
    expect(ring.get(keys[1]!.kid)).toBeDefined();
    expect(ring.get(keys[2]!.kid)).toBeDefined();
  });
});
