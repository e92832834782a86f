// Bundled by Vite for the browser and run inside headless Chromium: proves that protocol/ runs
// unchanged there (WebCrypto signing, canonical JSON, schemas, X.509 chains).
import 'reflect-metadata';
import { ObolError } from '@obol/protocol/errors';
import { KeyRing, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { signMessage, verifyMessage } from '@obol/protocol/signed';
import {
  createRootCa,
  issueOperatorCert,
  issueTemporaryCert,
  verifyChain,
} from '@obol/protocol/pki';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    return e instanceof ObolError ? e.name : `unexpected: ${String(e)}`;
  }
}

export async function selfTest(): Promise<Record<string, unknown>> {
  const now = Date.UTC(2026, 10, 23);
  const day = 86_400_000;
  // Sign and verify a wallet order with a non-extractable session key.
  const session = await keyHandle(await generateSigningKeyPair(false));
  const ring = new KeyRing();
  await ring.addSpki(session.publicKeySpki);
  const order = {
    transactionId: 't-q8VbZmC3Tzm1cS0xQ5m9Lw',
    n: 1,
    productId: 'article-1',
    price: 'EUR:0.03',
    origin: 'https://news.example',
    listSalt: 'c2FsdHNhbHRzYWx0c2FsdA',
    time: now,
  };
  const signed = await signMessage('wallet.order', order, session.signer);
  const verified = await verifyMessage(signed, 'wallet.order', ring.resolve);
  const tampered = await codeOf(
    verifyMessage({ ...signed, body: { ...signed.body, price: 'EUR:0.30' } }, 'wallet.order', ring.resolve),
  );

  // Root → operator → temporary certificate, checked in the browser.
  const rootKeys = await generateSigningKeyPair(false);
  const root = await createRootCa({ name: 'Obol Interbank Root', keys: rootKeys, notBefore: now - day, notAfter: now + 365 * day });
  const opKeys = await generateSigningKeyPair(false);
  const operator = await issueOperatorCert({
    operatorId: 'op-sek',
    publicKey: opKeys.publicKey,
    issuer: { cert: root, privateKey: rootKeys.privateKey },
    notBefore: now - day,
    notAfter: now + 30 * day,
  });
  const temp = await issueTemporaryCert({
    publicKey: session.publicKey,
    handle: 't-q8VbZmC3Tzm1cS0xQ5m9Lw',
    issuer: { cert: operator, privateKey: opKeys.privateKey },
    notBefore: now,
    notAfter: now + 3_600_000,
  });
  const leaf = await verifyChain(temp, { intermediates: [operator], trustedRoots: [root] }, { now: now + 60_000, expectKind: 'temporary' });
  const expired = await codeOf(
    verifyChain(temp, { intermediates: [operator], trustedRoots: [root] }, { now: now + 2 * 3_600_000, expectKind: 'temporary' }),
  );
  return {
    verifiedPrice: verified.body.price,
    tampered,
    leafKind: leaf.kind,
    leafTransaction: leaf.transactionId,
    expired,
    userAgent: navigator.userAgent,
  };
}
