import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Crypto as PeculiarCrypto } from '@peculiar/webcrypto';
import {
  AuthorityKeyIdentifierExtension,
  CertificatePolicyExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObolError } from '../src/errors.ts';
import { exportPublicKey } from '../src/keys.ts';
import {
  CERT_KIND_OIDS,
  type Cert,
  type CertIssuer,
  certToBase64,
  certToPem,
  certsToPem,
  createRootCa,
  describeCert,
  generateKeyPair,
  issueCustomerCert,
  issueMerchantCert,
  issueOperatorCert,
  issueSigningCert,
  operatorMessageKey,
  issueTemporaryCert,
  parseCert,
  publicKeyOf,
  reissue,
  verifyChain,
} from '../src/pki.ts';
import { type WebCrypto, fromBase64Url, toBase64Url } from '../src/webcrypto.ts';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 0, 1, 12); // whole seconds: X.509 keeps no milliseconds
const SESSION = 30 * 60 * SECOND;
/** A temporary certificate names the transaction's trade handle, never its TransactionIdentity. */
const TX = 't-q8VbZmC3Tzm1cS0xQ5m9Lw';
const ORIGINS = ['https://news.example', 'http://localhost:8080'];

/** The error name a rejected promise carries ('accepted' if it resolved); non-Obol errors fail the test. */
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
  return 'accepted';
}

/** Two operators under one interbank root: A (SEK) holds the customer, B (EUR) the merchant. */
async function buildWorld(crypto: WebCrypto) {
  const rootKeys = await generateKeyPair(false, crypto);
  const root = await createRootCa({ name: 'Obol Interbank Root', keys: rootKeys, notBefore: NOW - DAY, notAfter: NOW + 3650 * DAY }, crypto);
  const rootIssuer: CertIssuer = { cert: root, privateKey: rootKeys.privateKey };
  const operator = async (operatorId: string) => {
    const keys = await generateKeyPair(false, crypto);
    const cert = await issueOperatorCert({ operatorId, publicKey: keys.publicKey, issuer: rootIssuer, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY }, crypto);
    return { cert, privateKey: keys.privateKey, publicKey: keys.publicKey };
  };
  const opA = await operator('op-sek');
  const opB = await operator('op-eur');
  // op-sek's message-signing key, certified by its issuing key.
  const signingKeys = await generateKeyPair(false, crypto);
  const signingA = await issueSigningCert({ operatorId: 'op-sek', publicKey: signingKeys.publicKey, issuer: opA, notBefore: NOW - DAY, notAfter: NOW + 180 * DAY }, crypto);

  const walletKeys = await generateKeyPair(false, crypto);
  const customer = await issueCustomerCert({ customerId: 'alice-4711', publicKey: walletKeys.publicKey, issuer: opA, notBefore: NOW - HOUR, notAfter: NOW + 90 * DAY }, crypto);

  const merchantKeys = await generateKeyPair(false, crypto);
  const merchant = await issueMerchantCert(
    { merchantId: 'news-shop', origins: ORIGINS, publicKey: merchantKeys.publicKey, issuer: opB, notBefore: NOW - HOUR, notAfter: NOW + 30 * DAY },
    crypto,
  );
  // Step 7: the customer's operator re-issues the merchant's certificate for its wallet, for the session.
  const merchantForWallet = await reissue(merchant, opA, { notAfter: NOW + SESSION }, crypto);

  // Step 3: the session key arrives as SPKI base64url in the initiation message.
  const sessionKeys = await generateKeyPair(false, crypto);
  const sessionSpki = await exportPublicKey(sessionKeys.publicKey, crypto);
  const temp = await issueTemporaryCert({ handle: TX, publicKey: sessionSpki, issuer: opA, notBefore: NOW, notAfter: NOW + SESSION }, crypto);
  // Step 4: the merchant's operator re-issues it under its own key for its merchant.
  const tempForMerchant = await reissue(temp, opB, {}, crypto);

  return { rootKeys, root, rootIssuer, opA, opB, signingKeys, signingA, walletKeys, customer, merchantKeys, merchant, merchantForWallet, sessionKeys, sessionSpki, temp, tempForMerchant };
}

type World = Awaited<ReturnType<typeof buildWorld>>;

describe.each([
  ['node crypto.subtle', globalThis.crypto as WebCrypto],
  ['@peculiar/webcrypto', new PeculiarCrypto() as unknown as WebCrypto],
])('PKI with %s', (_name, crypto) => {
  let w: World;
  beforeAll(async () => {
    w = await buildWorld(crypto);
  });

  it('marks every certificate with its kind and identity fields', async () => {
    expect(describeCert(w.root)).toMatchObject({ kind: 'root', subjectId: 'Obol Interbank Root', issuerName: 'Obol Interbank Root' });
    expect(describeCert(w.opA.cert)).toMatchObject({ kind: 'operator', subjectId: 'op-sek', issuerName: 'Obol Interbank Root' });
    expect(describeCert(w.customer)).toMatchObject({
      kind: 'customer',
      subjectId: 'alice-4711',
      issuerName: 'op-sek',
      notBefore: NOW - HOUR,
      notAfter: NOW + 90 * DAY,
      publicKeySpki: await exportPublicKey(w.walletKeys.publicKey, crypto),
    });
    expect(describeCert(w.merchant)).toMatchObject({ kind: 'merchant', subjectId: 'news-shop', merchantId: 'news-shop', origins: ORIGINS, issuerName: 'op-eur' });
    const temp = describeCert(w.temp);
    expect(temp).toMatchObject({ kind: 'temporary', subjectId: TX, transactionId: TX, issuerName: 'op-sek', publicKeySpki: w.sessionSpki });
    expect(temp.merchantId).toBeUndefined();
    // Zone 4: no name, no account — the subject is empty.
    expect(w.temp.subject).toBe('');
    expect(w.temp.subjectName.getField('CN')).toEqual([]);
    // Random positive serials: top bit clear, 16 bytes, different every time.
    expect(describeCert(w.customer).serial).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(describeCert(w.customer).serial).not.toBe(describeCert(w.merchant).serial);
    // Small: an end-entity certificate stays under half a kilobyte (the 128-bit trade handle and the subject key identifier included).
    expect(w.temp.rawData.byteLength).toBeLessThan(460);
    expect(w.merchant.rawData.byteLength).toBeLessThan(490);
  });

  it('verifies each chain up to the root and returns the leaf description', async () => {
    const trust = { intermediates: [w.opA.cert, w.opB.cert], trustedRoots: [w.root] };
    expect(await verifyChain(w.customer, trust, { now: NOW, expectKind: 'customer' }, crypto)).toMatchObject({ kind: 'customer', subjectId: 'alice-4711' });
    expect(await verifyChain(w.merchant, trust, { now: NOW, expectKind: 'merchant' }, crypto)).toMatchObject({ merchantId: 'news-shop', origins: ORIGINS });
    expect(await verifyChain(w.temp, trust, { now: NOW, expectKind: 'temporary' }, crypto)).toMatchObject({ transactionId: TX });
    expect(await verifyChain(w.opB.cert, { trustedRoots: [w.root] }, { now: NOW, expectKind: 'operator' }, crypto)).toMatchObject({ subjectId: 'op-eur' });
    // The wire form goes straight in.
    expect((await verifyChain(certToBase64(w.customer), trust, { now: NOW }, crypto)).kind).toBe('customer');
  });

  it('re-issues a temporary certificate under the merchant’s operator: same key, same transaction', async () => {
    const original = describeCert(w.temp);
    const copy = describeCert(w.tempForMerchant);
    expect(copy).toMatchObject({ kind: 'temporary', transactionId: TX, publicKeySpki: original.publicKeySpki, issuerName: 'op-eur', notAfter: original.notAfter });
    expect(copy.serial).not.toBe(original.serial);
    // The merchant trusts only its own operator.
    const merchantTrust = { trustedIssuers: [w.opB.cert] };
    expect((await verifyChain(w.tempForMerchant, merchantTrust, { now: NOW, expectKind: 'temporary' }, crypto)).transactionId).toBe(TX);
    expect(await code(verifyChain(w.temp, merchantTrust, { now: NOW }, crypto))).toBe('CERT_UNTRUSTED');
    // An order signed with the session key verifies under the certificate's key.
    const data = new TextEncoder().encode('order 1');
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, w.sessionKeys.privateKey, data);
    expect(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, await publicKeyOf(w.tempForMerchant, crypto), sig, data)).toBe(true);
  });

  it('re-issues a merchant certificate for the wallet: same key, merchant id and origins, never longer-lived', async () => {
    const copy = describeCert(w.merchantForWallet);
    expect(copy).toMatchObject({ kind: 'merchant', merchantId: 'news-shop', origins: ORIGINS, issuerName: 'op-sek', notAfter: NOW + SESSION });
    expect(copy.publicKeySpki).toBe(describeCert(w.merchant).publicKeySpki);
    expect((await verifyChain(w.merchantForWallet, { trustedIssuers: [w.opA.cert] }, { now: NOW, expectKind: 'merchant' }, crypto)).merchantId).toBe('news-shop');
    // Asking for more than the original gives no more than the original.
    const stretched = await reissue(w.merchant, w.opA, { notAfter: NOW + 1000 * DAY }, crypto);
    expect(describeCert(stretched).notAfter).toBe(describeCert(w.merchant).notAfter);
  });

  it('refuses expired and not-yet-valid certificates anywhere in the chain', async () => {
    const trust = { intermediates: [w.opA.cert], trustedRoots: [w.root] };
    const at = (now: number) => code(verifyChain(w.temp, trust, { now }, crypto));
    expect(await at(NOW + SESSION)).toBe('accepted'); // inclusive at both ends
    expect(await at(NOW + SESSION + SECOND)).toBe('CERT_EXPIRED');
    expect(await at(NOW - SECOND)).toBe('CERT_NOT_YET_VALID');
    // Later the customer certificate is still in date; with an expired operator certificate the chain is not.
    expect(await code(verifyChain(w.customer, trust, { now: NOW + 80 * DAY }, crypto))).toBe('accepted');
    const shortCustomer = await issueCustomerCert({ customerId: 'bob', publicKey: w.walletKeys.publicKey, issuer: w.opA, notBefore: NOW, notAfter: NOW + 400 * DAY }, crypto);
    // (Issued validity never outlives the issuer: clamped to the operator's notAfter.)
    expect(describeCert(shortCustomer).notAfter).toBe(w.opA.cert.notAfter.getTime());
    const expiredOp = await issueOperatorCert({ operatorId: 'op-sek', publicKey: w.opA.publicKey, issuer: w.rootIssuer, notBefore: NOW - DAY, notAfter: NOW + HOUR }, crypto);
    expect(await code(verifyChain(w.customer, { intermediates: [expiredOp], trustedRoots: [w.root] }, { now: NOW + 2 * HOUR }, crypto))).toBe('CERT_EXPIRED');
  });

  it('refuses certificates from a foreign root, even one with the same name', async () => {
    const evilKeys = await generateKeyPair(false, crypto);
    const evilRoot = await createRootCa({ name: 'Obol Interbank Root', keys: evilKeys, notBefore: NOW - DAY, notAfter: NOW + DAY }, crypto);
    const opKeys = await generateKeyPair(false, crypto);
    const evilOp = await issueOperatorCert({ operatorId: 'op-sek', publicKey: opKeys.publicKey, issuer: { cert: evilRoot, privateKey: evilKeys.privateKey }, notBefore: NOW - DAY, notAfter: NOW + DAY }, crypto);
    const evilCustomer = await issueCustomerCert({ customerId: 'alice-4711', publicKey: w.walletKeys.publicKey, issuer: { cert: evilOp, privateKey: opKeys.privateKey }, notBefore: NOW - DAY, notAfter: NOW + DAY }, crypto);
    expect(await code(verifyChain(evilCustomer, { intermediates: [evilOp, w.opA.cert], trustedRoots: [w.root] }, { now: NOW }, crypto))).toBe('CERT_UNTRUSTED');
    // The foreign root itself offered as an intermediate does not help.
    expect(await code(verifyChain(evilCustomer, { intermediates: [evilOp, evilRoot], trustedRoots: [w.root] }, { now: NOW }, crypto))).toBe('CERT_UNTRUSTED');
    // Our own chain against someone else's root fails as well.
    expect(await code(verifyChain(w.customer, { intermediates: [w.opA.cert], trustedRoots: [evilRoot] }, { now: NOW }, crypto))).toBe('CERT_UNTRUSTED');
    // A certificate from the other operator, when only A is trusted directly.
    expect(await code(verifyChain(w.merchant, { trustedIssuers: [w.opA.cert] }, { now: NOW }, crypto))).toBe('CERT_UNTRUSTED');
  });

  it('an operator’s signing certificate: a leaf of kind signing, checked against its own operator only', async () => {
    expect(describeCert(w.signingA)).toMatchObject({ kind: 'signing', subjectId: 'op-sek', issuerName: 'op-sek' });
    const k = await operatorMessageKey(w.signingA, w.opA.cert, NOW, crypto);
    expect(k).toMatchObject({ operatorId: 'op-sek', certB64: certToBase64(w.signingA) });
    expect(await code(operatorMessageKey(w.signingA, w.opB.cert, NOW, crypto))).toBe('CERT_UNTRUSTED');
    expect(await code(operatorMessageKey(w.opA.cert, w.opA.cert, NOW, crypto))).toBe('CERT_WRONG_KIND');
    expect(await code(operatorMessageKey(w.customer, w.opA.cert, NOW, crypto))).toBe('CERT_WRONG_KIND');
    expect(await code(operatorMessageKey(w.signingA, w.opA.cert, NOW + 200 * DAY, crypto))).toBe('CERT_EXPIRED');
    // A signing key signs no certificate: as an issuer it is refused (not a CA, not the issuer kind).
    const keys = await generateKeyPair(false, crypto);
    expect(await code(issueCustomerCert({ customerId: 'x', publicKey: keys.publicKey, issuer: { cert: w.signingA, privateKey: w.signingKeys.privateKey }, notBefore: NOW, notAfter: NOW + DAY }, crypto))).toBe('CERT_WRONG_KIND');
    // Only the operator it names may certify it.
    expect(await code(issueSigningCert({ operatorId: 'op-eur', publicKey: keys.publicKey, issuer: w.opA, notBefore: NOW, notAfter: NOW + DAY }, crypto))).toBe('CERT_WRONG_KIND');
  });

  it('refuses a temporary certificate signed by a customer (not an operator)', async () => {
    // The issuing functions already refuse to do this…
    const forge = { cert: w.customer, privateKey: w.walletKeys.privateKey };
    expect(await code(issueTemporaryCert({ handle: TX, publicKey: w.sessionSpki, issuer: forge, notBefore: NOW, notAfter: NOW + SESSION }, crypto))).toBe('CERT_WRONG_KIND');
    // …so build one by hand, as an attacker holding a wallet key would.
    const forged = await X509CertificateGenerator.create(
      {
        issuer: w.customer.subjectName,
        publicKey: w.sessionKeys.publicKey,
        signingKey: w.walletKeys.privateKey,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
        notBefore: new Date(NOW),
        notAfter: new Date(NOW + SESSION),
        extensions: [
          new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
          await AuthorityKeyIdentifierExtension.create(w.customer.publicKey, false, crypto),
          new CertificatePolicyExtension([CERT_KIND_OIDS.temporary]),
          new SubjectAlternativeNameExtension([{ type: 'url', value: `urn:obol:tx:${TX}` }], true),
        ],
      },
      crypto,
    );
    expect(describeCert(forged).kind).toBe('temporary');
    const trust = { intermediates: [w.customer, w.opA.cert], trustedRoots: [w.root] };
    expect(await code(verifyChain(forged, trust, { now: NOW }, crypto))).toBe('CERT_WRONG_KIND');
    expect(await code(verifyChain(forged, { trustedIssuers: [w.customer] }, { now: NOW }, crypto))).toBe('CERT_WRONG_KIND');
  });

  it('refuses the wrong expected kind and a misconfigured trust list', async () => {
    const trust = { intermediates: [w.opA.cert, w.opB.cert], trustedRoots: [w.root] };
    expect(await code(verifyChain(w.customer, trust, { now: NOW, expectKind: 'merchant' }, crypto))).toBe('CERT_WRONG_KIND');
    expect(await code(verifyChain(w.temp, trust, { now: NOW, expectKind: ['customer', 'merchant'] }, crypto))).toBe('CERT_WRONG_KIND');
    // An operator certificate is not a root.
    expect(await code(verifyChain(w.customer, { trustedRoots: [w.opA.cert] }, { now: NOW }, crypto))).toBe('CERT_WRONG_KIND');
    // A merchant certificate cannot re-issue anything.
    expect(await code(reissue(w.temp, { cert: w.merchant, privateKey: w.merchantKeys.privateKey }, {}, crypto))).toBe('CERT_WRONG_KIND');
  });
});

describe('PKI encoding and tampering (node crypto.subtle)', () => {
  const crypto = globalThis.crypto as WebCrypto;
  let w: World;
  beforeAll(async () => {
    w = await buildWorld(crypto);
  });

  it('round-trips base64url DER (the JSON form), PEM and plain base64', () => {
    const wire = certToBase64(w.merchant);
    expect(wire).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(certToBase64(parseCert(wire))).toBe(wire);
    const pem = certToPem(w.merchant);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(certToBase64(parseCert(pem))).toBe(wire);
    expect(certToBase64(parseCert(Buffer.from(fromBase64Url(wire)).toString('base64')))).toBe(wire);
    expect(certToBase64(parseCert(fromBase64Url(wire)))).toBe(wire);
  });

  it('refuses input that is not exactly one P-256 certificate', async () => {
    const der = fromBase64Url(certToBase64(w.customer));
    const malformed = (input: string | Uint8Array) => {
      try {
        parseCert(input);
        return 'accepted';
      } catch (e) {
        return (e as ObolError).name;
      }
    };
    expect(malformed('not a certificate!')).toBe('MALFORMED');
    expect(malformed('')).toBe('MALFORMED');
    expect(malformed(toBase64Url(der.slice(0, 100)))).toBe('MALFORMED');
    const trailing = new Uint8Array(der.length + 1);
    trailing.set(der);
    expect(malformed(trailing)).toBe('MALFORMED');
    // An RSA-keyed or P-384 certificate is not an Obol certificate.
    const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const other = await X509CertificateGenerator.createSelfSigned({ name: 'CN=x', keys: p384, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams }, crypto);
    expect(malformed(certToBase64(other))).toBe('MALFORMED');
  });

  it('certificates made with one WebCrypto provider verify with the other', async () => {
    const peculiar = new PeculiarCrypto() as unknown as WebCrypto;
    const p = await buildWorld(peculiar);
    const fromPeculiar = await verifyChain(certToBase64(p.tempForMerchant), { trustedIssuers: [p.opB.cert] }, { now: NOW, expectKind: 'temporary' }, crypto);
    expect(fromPeculiar.transactionId).toBe(TX);
    const fromNode = await verifyChain(certToBase64(w.customer), { intermediates: [w.opA.cert], trustedRoots: [w.root] }, { now: NOW }, peculiar);
    expect(fromNode.subjectId).toBe('alice-4711');
  });

  it('refuses every single-byte change of a temporary certificate', async () => {
    const der = fromBase64Url(certToBase64(w.temp));
    const trust = { intermediates: [w.opA.cert], trustedRoots: [w.root] };
    const seen = new Set<string>();
    for (let i = 0; i < der.length; i++) {
      const bad = der.slice();
      bad[i] = bad[i]! ^ 0x01;
      const result = await code(verifyChain(toBase64Url(bad), trust, { now: NOW }, crypto));
      expect(['CERT_UNTRUSTED', 'MALFORMED'], `byte ${i}`).toContain(result);
      seen.add(result);
    }
    expect(seen).toEqual(new Set(['CERT_UNTRUSTED', 'MALFORMED']));
  });
});

/**
 * An outside opinion: openssl must accept our chains as ordinary X.509 (with -x509_strict, which
 * checks the RFC 5280 profile: key identifiers, critical SAN for an empty subject, CA flags), and
 * its policy processing must find the leaf's Obol kind policy through the CA's anyPolicy.
 */
const hasOpenssl = !spawnSync('openssl', ['version']).error;
if (!hasOpenssl) console.warn('pki.test.ts: `openssl` is not on PATH, skipping the openssl cross-check');

describe.skipIf(!hasOpenssl)('PKI checked by openssl verify', () => {
  let w: World;
  let dir: string;
  beforeAll(async () => {
    w = await buildWorld(globalThis.crypto as WebCrypto);
    dir = mkdtempSync(join(tmpdir(), 'obol-pki-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function opensslVerify(root: Cert, operator: Cert, leaf: Cert, extra: string[] = [], at = NOW) {
    const file = (name: string, cert: Cert) => {
      const path = join(dir, name);
      writeFileSync(path, certToPem(cert));
      return path;
    };
    const args = ['verify', '-x509_strict', '-attime', String(at / 1000), ...extra];
    args.push('-CAfile', file('root.pem', root), '-untrusted', file('operator.pem', operator), file('leaf.pem', leaf));
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    return { ok: r.status === 0 && /: OK$/m.test(r.stdout), output: `${r.stdout}${r.stderr}` };
  }

  it('accepts a customer certificate and both temporary certificates', () => {
    for (const [operator, leaf] of [
      [w.opA.cert, w.customer],
      [w.opA.cert, w.temp],
      [w.opB.cert, w.tempForMerchant],
      [w.opA.cert, w.merchantForWallet],
    ] as const) {
      const r = opensslVerify(w.root, operator, leaf);
      expect(r.output).toMatch(/leaf\.pem: OK/);
      expect(r.ok).toBe(true);
    }
  });

  function openssl(args: string[], input?: string) {
    const r = spawnSync('openssl', args, { encoding: 'utf8', input });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  it('reads PEM files concatenated into a bundle as all their certificates (each PEM ends its last line)', () => {
    for (const c of [w.root, w.opA.cert, w.customer, w.temp]) expect(certToPem(c).endsWith('-----END CERTIFICATE-----\n')).toBe(true);
    // What `cat root.pem operator.pem customer.pem > bundle.pem` makes.
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, [w.root, w.opA.cert, w.customer].map(certToPem).join(''));
    expect(certsToPem([w.root, w.opA.cert, w.customer])).toBe([w.root, w.opA.cert, w.customer].map(certToPem).join(''));
    const p7 = spawnSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', bundle], { encoding: 'utf8' });
    expect(p7.status).toBe(0);
    const printed = openssl(['pkcs7', '-print_certs', '-noout'], p7.stdout);
    expect(printed.out.match(/^subject=/gm)?.length).toBe(3);
    // And a chain bundle as -untrusted: operator and root in one file.
    const chain = join(dir, 'chain.pem');
    writeFileSync(chain, certToPem(w.opA.cert) + certToPem(w.root));
    writeFileSync(join(dir, 'root.pem'), certToPem(w.root));
    writeFileSync(join(dir, 'leaf.pem'), certToPem(w.customer));
    const v = openssl(['verify', '-x509_strict', '-attime', String(NOW / 1000), '-CAfile', join(dir, 'root.pem'), '-untrusted', chain, join(dir, 'leaf.pem')]);
    expect(v.out).toMatch(/leaf\.pem: OK/);
  });

  it('gives every certificate a subject key identifier, and every issued one the issuer’s as its authority key identifier', () => {
    const text = (c: Cert) => {
      const path = join(dir, 'x.pem');
      writeFileSync(path, certToPem(c));
      return openssl(['x509', '-in', path, '-noout', '-text']).out;
    };
    const skiOf = (c: Cert) => /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(text(c))?.[1];
    const akiOf = (c: Cert) => /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text(c))?.[1];
    const pairs: Array<[Cert, Cert]> = [
      [w.opA.cert, w.root],
      [w.customer, w.opA.cert],
      [w.merchant, w.opB.cert],
      [w.merchantForWallet, w.opA.cert],
      [w.temp, w.opA.cert],
      [w.tempForMerchant, w.opB.cert],
    ];
    expect(skiOf(w.root)).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){19}$/);
    for (const [leaf, issuer] of pairs) {
      expect(skiOf(leaf)).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){19}$/);
      expect(akiOf(leaf)).toBe(skiOf(issuer));
    }
    // A re-issued certificate holds the same key, so it has the same key id as the original.
    expect(skiOf(w.tempForMerchant)).toBe(skiOf(w.temp));
  });

  it('keyUsage and basicConstraints: CAs sign certificates only, the operator’s signing key signs only, and is no CA', () => {
    const text = (c: Cert) => {
      const path = join(dir, 'x.pem');
      writeFileSync(path, certToPem(c));
      return openssl(['x509', '-in', path, '-noout', '-text']).out;
    };
    const usage = (t: string) => /X509v3 Key Usage: critical\s*\n\s*(.+)/.exec(t)?.[1]?.trim();
    const ca = (t: string) => /X509v3 Basic Constraints: critical\s*\n\s*(.+)/.exec(t)?.[1]?.trim();
    expect([usage(text(w.root)), ca(text(w.root))]).toEqual(['Certificate Sign, CRL Sign', 'CA:TRUE, pathlen:1']);
    // The operator's issuing key: no digitalSignature, so it cannot stand behind a protocol message.
    expect([usage(text(w.opA.cert)), ca(text(w.opA.cert))]).toEqual(['Certificate Sign, CRL Sign', 'CA:TRUE, pathlen:0']);
    const signing = text(w.signingA);
    expect([usage(signing), ca(signing)]).toEqual(['Digital Signature', undefined]);
    expect(signing).not.toMatch(/CA:TRUE/);
    expect(signing).toMatch(/Subject Key Identifier/);
    for (const leaf of [w.customer, w.merchant, w.temp]) expect([usage(text(leaf)), ca(text(leaf))]).toEqual(['Digital Signature', undefined]);
    // openssl also accepts the signing certificate's chain, and refuses it as an issuer.
    expect(opensslVerify(w.root, w.opA.cert, w.signingA).ok).toBe(true);
    expect(opensslVerify(w.root, w.signingA, w.customer).ok).toBe(false);
  });

  it('finds the kind policy under explicit policy checking, and refuses a wrong issuer', () => {
    const policy = ['-policy_check', '-explicit_policy', '-policy', CERT_KIND_OIDS.temporary];
    expect(opensslVerify(w.root, w.opB.cert, w.tempForMerchant, policy).ok).toBe(true);
    expect(opensslVerify(w.root, w.opA.cert, w.customer, policy).ok).toBe(false);
    expect(opensslVerify(w.root, w.opA.cert, w.tempForMerchant).ok).toBe(false);
    expect(opensslVerify(w.root, w.opA.cert, w.temp, [], NOW + 2 * SESSION).ok).toBe(false);
  });
});
