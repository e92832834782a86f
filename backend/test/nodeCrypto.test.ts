// The servers' WebCrypto handle (src/crypto/nodeCrypto.ts) against Node's own crypto.subtle: the
// same signatures accepted both ways, the same refusals, the same digests, and whatever it does
// not take over still WebCrypto's.
import { KEY_ALG, SIGN_ALG, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { signMessage, verifyMessage } from '@obol/protocol/signed';
import { describe, expect, it } from 'vitest';
import { nodeWebCrypto } from '../src/crypto/nodeCrypto.ts';

const fast = nodeWebCrypto();
const subtle = globalThis.crypto.subtle;
const data = new TextEncoder().encode('{"v":1,"type":"wallet.order","body":{"n":1}}');

describe('nodeWebCrypto', () => {
  it('signs what WebCrypto accepts and accepts what WebCrypto signs (ES256, P1363)', async () => {
    const pair = await generateSigningKeyPair();
    const byNode = new Uint8Array(await fast.subtle.sign(SIGN_ALG, pair.privateKey, data));
    const byWeb = new Uint8Array(await subtle.sign(SIGN_ALG, pair.privateKey, data));
    expect(byNode.length).toBe(64);
    expect(await subtle.verify(SIGN_ALG, pair.publicKey, byNode, data)).toBe(true);
    expect(await fast.subtle.verify(SIGN_ALG, pair.publicKey, byWeb, data)).toBe(true);
    expect(await fast.subtle.verify({ name: 'ECDSA', hash: { name: 'SHA-256' } }, pair.publicKey, byWeb.buffer, data.buffer)).toBe(true);
  });

  it('refuses as WebCrypto does: another body, another key, a broken or short signature', async () => {
    const pair = await generateSigningKeyPair();
    const other = await generateSigningKeyPair();
    const sig = new Uint8Array(await subtle.sign(SIGN_ALG, pair.privateKey, data));
    const flipped = sig.slice();
    flipped[10]! ^= 1;
    const cases: [CryptoKey, Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>][] = [
      [pair.publicKey, sig, new TextEncoder().encode('another body')],
      [other.publicKey, sig, data],
      [pair.publicKey, flipped, data],
      [pair.publicKey, sig.slice(0, 63), data],
      [pair.publicKey, new Uint8Array(0), data],
      [pair.publicKey, new Uint8Array(64), data],
    ];
    for (const [key, s, d] of cases) {
      expect(await fast.subtle.verify(SIGN_ALG, key, s, d)).toBe(await subtle.verify(SIGN_ALG, key, s, d));
      expect(await fast.subtle.verify(SIGN_ALG, key, s, d)).toBe(false);
    }
  });

  it('leaves keys without the usage, and other algorithms, to WebCrypto (its errors, its answers)', async () => {
    const pair = await generateSigningKeyPair();
    // A public key cannot sign: WebCrypto's InvalidAccessError, not a signature.
    await expect(fast.subtle.sign(SIGN_ALG, pair.publicKey, data)).rejects.toThrow();
    const ed = (await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const edSig = await fast.subtle.sign({ name: 'Ed25519' }, ed.privateKey, data);
    expect(await subtle.verify({ name: 'Ed25519' }, ed.publicKey, edSig, data)).toBe(true);
    const p384 = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const s384 = await fast.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, p384.privateKey, data);
    expect(await subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, p384.publicKey, s384, data)).toBe(true);
    expect(await fast.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, p384.publicKey, s384, data)).toBe(true);
    // Other members are WebCrypto's own, on their own receiver.
    const imported = await fast.subtle.importKey('spki', await subtle.exportKey('spki', pair.publicKey), KEY_ALG, true, ['verify']);
    expect(imported.type).toBe('public');
    expect(fast.getRandomValues(new Uint8Array(8)).length).toBe(8);
  });

  it('digests SHA-256 to the same bytes, and leaves other digests to WebCrypto', async () => {
    for (const input of [new Uint8Array(0), data, new Uint8Array(100_000).fill(7)] as Uint8Array<ArrayBuffer>[]) {
      expect(new Uint8Array(await fast.subtle.digest('SHA-256', input))).toEqual(new Uint8Array(await subtle.digest('SHA-256', input)));
      expect(new Uint8Array(await fast.subtle.digest({ name: 'SHA-256' }, input.subarray(1)))).toEqual(new Uint8Array(await subtle.digest('SHA-256', input.subarray(1))));
    }
    expect(new Uint8Array(await fast.subtle.digest('SHA-512', data))).toEqual(new Uint8Array(await subtle.digest('SHA-512', data)));
  });

  it('signs protocol messages a WebCrypto party verifies, and the other way round', async () => {
    const serverKey = await keyHandle(await generateSigningKeyPair(false, fast), fast);
    const walletKey = await keyHandle(await generateSigningKeyPair());
    const fromServer = await signMessage('merchant.ack', { msgId: 'm'.repeat(22), transactionId: `t-${'a'.repeat(22)}`, infoMsgId: 'i'.repeat(22), time: 1 }, serverKey.signer);
    await expect(verifyMessage(fromServer, 'merchant.ack', (k) => (k === serverKey.kid ? serverKey.publicKey : undefined))).resolves.toBeTruthy();
    const fromWallet = await signMessage('merchant.ack', { msgId: 'n'.repeat(22), transactionId: `t-${'a'.repeat(22)}`, infoMsgId: 'j'.repeat(22), time: 2 }, walletKey.signer);
    await expect(verifyMessage(fromWallet, 'merchant.ack', (k) => (k === walletKey.kid ? walletKey.publicKey : undefined), fast)).resolves.toBeTruthy();
    const forged = { ...fromWallet, body: { ...fromWallet.body, time: 3 } };
    await expect(verifyMessage(forged, 'merchant.ack', (k) => (k === walletKey.kid ? walletKey.publicKey : undefined), fast)).rejects.toThrow(/does not verify/);
  });

  it('wraps a key with AES-KW to the bytes WebCrypto makes and unwraps, and refuses as WebCrypto does', async () => {
    for (const size of [16, 32]) {
      const k1 = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'AES-KW' }, false, ['wrapKey', 'unwrapKey']);
      const k2 = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(size)), { name: 'AES-GCM' }, true, ['encrypt', 'decrypt']);
      const byNode = new Uint8Array(await fast.subtle.wrapKey('raw', k2, k1, 'AES-KW'));
      expect(byNode).toEqual(new Uint8Array(await subtle.wrapKey('raw', k2, k1, 'AES-KW')));
      const back = await subtle.unwrapKey('raw', byNode, k1, 'AES-KW', { name: 'AES-GCM' }, true, ['decrypt']);
      expect(new Uint8Array(await subtle.exportKey('raw', back))).toEqual(new Uint8Array(await subtle.exportKey('raw', k2)));
    }
    const k1 = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'AES-KW' }, false, ['unwrapKey']);
    const k2 = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'AES-GCM' }, true, ['encrypt']);
    const sealed = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'AES-GCM' }, false, ['encrypt']);
    const wrapper = await subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'AES-KW' }, false, ['wrapKey']);
    // A wrapping key without the usage, and a key that may not leave: WebCrypto's refusals.
    await expect(fast.subtle.wrapKey('raw', k2, k1, 'AES-KW')).rejects.toThrow();
    await expect(fast.subtle.wrapKey('raw', sealed, wrapper, 'AES-KW')).rejects.toThrow();
  });
});
