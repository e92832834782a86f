import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorityKeyIdentifierExtension,
  CertificatePolicyExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { ObolError } from '../src/errors.ts';
import { exportPublicKey } from '../src/keys.ts';
import {
  CERT_KIND_OIDS,
  type Cert,
  type CertIssuer,
  certToBase64,
  certToPem,
  createRootCa,
  describeCert,
  generateKeyPair,
  issueCustomerCert,
  issueOperatorCert,
  issueSigningCert,
  issueTemporaryCertB64,
  parseCert,
  reissueTemporaryB64,
  verifyChain,
} from '../src/pki.ts';
import { derElement } from '../src/pki/der.ts';
import { readTemporaryCert } from '../src/pki/temporary.ts';
import { type WebCrypto, fromBase64Url, toBase64Url } from '../src/webcrypto.ts';

/**
 * The temporary certificate is written and read by hand (pki/temporary.ts) because it is made on
 * every session open. These tests hold the hand-written form to what @peculiar/x509 writes for the
 * same fields, byte for byte, have openssl read and verify it, and check that the hand-read path of
 * `verifyChain` answers exactly as the general path and refuses everything that one refuses.
 */
const crypto = globalThis.crypto as WebCrypto;
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 0, 1, 12);
const TX = 't-q8VbZmC3Tzm1cS0xQ5m9Lw';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
  return 'accepted';
}

/** The to-be-signed bytes of a certificate (what a signature covers). */
function tbsOf(der: Uint8Array): Uint8Array {
  const outer = derElement(der, 0, der.length)!;
  const tbs = derElement(der, outer.start, outer.end)!;
  return der.subarray(tbs.at, tbs.end);
}

/** What @peculiar/x509 writes for a temporary certificate with these fields (the profile of issue.ts). */
async function peculiarTemporary(serial: string, notBefore: number, notAfter: number, spki: string, issuer: CertIssuer, handle: string): Promise<X509Certificate> {
  return X509CertificateGenerator.create(
    {
      serialNumber: serial,
      issuer: issuer.cert.subjectName,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: fromBase64Url(spki).buffer,
      signingKey: issuer.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      extensions: [
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        await SubjectKeyIdentifierExtension.create(fromBase64Url(spki).buffer, false, crypto),
        new AuthorityKeyIdentifierExtension(issuer.cert.getExtension(SubjectKeyIdentifierExtension)!.keyId, false),
        new CertificatePolicyExtension([CERT_KIND_OIDS.temporary], false),
        new SubjectAlternativeNameExtension([{ type: 'url', value: `urn:obol:tx:${handle}` }], true),
      ],
    },
    crypto,
  );
}

describe('the hand-written temporary certificate', () => {
  let root: Cert;
  let opA: CertIssuer & { publicKey: CryptoKey };
  let opB: CertIssuer;
  let sessionSpki: string;
  let temp: string;
  beforeAll(async () => {
    const rootKeys = await generateKeyPair(false, crypto);
    root = await createRootCa({ name: 'Obol Interbank Root', keys: rootKeys, notBefore: NOW - DAY, notAfter: NOW + 40 * 365 * DAY }, crypto);
    const operator = async (operatorId: string) => {
      const keys = await generateKeyPair(false, crypto);
      const cert = await issueOperatorCert(
        { operatorId, publicKey: keys.publicKey, issuer: { cert: root, privateKey: rootKeys.privateKey }, notBefore: NOW - DAY, notAfter: NOW + 35 * 365 * DAY },
        crypto,
      );
      return { cert, privateKey: keys.privateKey, publicKey: keys.publicKey };
    };
    opA = await operator('op-sek');
    opB = await operator('op-eur');
    sessionSpki = await exportPublicKey((await generateKeyPair(false, crypto)).publicKey, crypto);
    temp = await issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: opA, notBefore: NOW, notAfter: NOW + HOUR }, crypto);
  });

  it('is byte for byte what @peculiar/x509 writes for the same fields, UTCTime and GeneralizedTime alike', async () => {
    // 2049 is the last UTCTime year, 2050 the first GeneralizedTime one (RFC 5280 4.1.2.5).
    const windows = [
      [NOW, NOW + HOUR],
      [Date.UTC(2049, 11, 31, 23, 0, 0), Date.UTC(2050, 0, 1, 1, 0, 0)],
      [NOW + 0.4 * SECOND, NOW + HOUR + 0.9 * SECOND], // milliseconds drop, as X.509 keeps none
    ] as const;
    for (const [notBefore, notAfter] of windows) {
      const ours = await issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: opA, notBefore, notAfter }, crypto);
      const d = describeCert(parseCert(ours));
      const theirs = await peculiarTemporary(d.serial, d.notBefore, d.notAfter, sessionSpki, opA, TX);
      expect(toBase64Url(new Uint8Array(tbsOf(fromBase64Url(ours))))).toBe(toBase64Url(new Uint8Array(tbsOf(new Uint8Array(theirs.rawData)))));
      expect(d.notBefore).toBe(Math.floor(notBefore / 1000) * 1000);
      // @peculiar/x509 reads it as the certificate its issuer signed.
      const read = new X509Certificate(fromBase64Url(ours));
      expect(await read.verify({ publicKey: opA.publicKey, signatureOnly: true }, crypto)).toBe(true);
    }
  });

  it('reads as the same description by hand and by the general parser', async () => {
    const trust = { trustedIssuers: [opA.cert] };
    const byHand = await verifyChain(temp, trust, { now: NOW, expectKind: 'temporary' }, crypto);
    const general = await verifyChain(parseCert(temp), trust, { now: NOW, expectKind: 'temporary' }, crypto);
    expect(byHand).toEqual(general);
    // …and the hand-read path is the one taken: the reader takes the certificate in whole.
    const read = readTemporaryCert(fromBase64Url(temp), CERT_KIND_OIDS.temporary);
    expect(read && { handle: read.handle, spki: toBase64Url(new Uint8Array(read.spki)), notAfter: read.notAfter }).toEqual({ handle: TX, spki: sessionSpki, notAfter: NOW + HOUR });
    // A certificate of another kind is left to the general parser.
    expect(readTemporaryCert(fromBase64Url(certToBase64(opA.cert)), CERT_KIND_OIDS.temporary)).toBeUndefined();
    expect(byHand).toMatchObject({ kind: 'temporary', transactionId: TX, subjectId: TX, publicKeySpki: sessionSpki, issuerName: 'op-sek', notAfter: NOW + HOUR });
    // Re-issued for the merchant: same key, same transaction, same validity, the other issuer.
    const copy = await reissueTemporaryB64(byHand, opB, crypto);
    const forMerchant = await verifyChain(copy, { trustedIssuers: [opB.cert] }, { now: NOW, expectKind: 'temporary' }, crypto);
    expect(forMerchant).toMatchObject({ transactionId: TX, publicKeySpki: sessionSpki, issuerName: 'op-eur', notBefore: NOW, notAfter: NOW + HOUR });
    expect(forMerchant.serial).not.toBe(byHand.serial);
  });

  it('refuses what the general path refuses: dates, issuer, kind, key usage, every changed byte', async () => {
    const both = async (cert: string, trust: { trustedIssuers: Cert[] }, now: number, expectKind: 'temporary' | 'customer' = 'temporary') => {
      const byHand = await code(verifyChain(cert, trust, { now, expectKind }, crypto));
      let general: string;
      try {
        general = await code(verifyChain(parseCert(cert), trust, { now, expectKind }, crypto));
      } catch {
        general = 'MALFORMED';
      }
      if (general === 'MALFORMED' || byHand === 'MALFORMED') return byHand;
      expect(byHand).toBe(general);
      return byHand;
    };
    const trust = { trustedIssuers: [opA.cert] };
    expect(await both(temp, trust, NOW - SECOND)).toBe('CERT_NOT_YET_VALID');
    expect(await both(temp, trust, NOW + HOUR + SECOND)).toBe('CERT_EXPIRED');
    expect(await both(temp, trust, NOW, 'customer')).toBe('CERT_WRONG_KIND');
    // Another operator, and the same operator's signing key (same name, another key).
    expect(await both(temp, { trustedIssuers: [opB.cert] }, NOW)).toBe('CERT_UNTRUSTED');
    const signingKeys = await generateKeyPair(false, crypto);
    const signing = await issueSigningCert({ operatorId: 'op-sek', publicKey: signingKeys.publicKey, issuer: opA, notBefore: NOW - DAY, notAfter: NOW + DAY }, crypto);
    expect(await both(temp, { trustedIssuers: [signing] }, NOW)).toBe('CERT_UNTRUSTED');
    // Same name, same key, but not a CA: a customer certificate may not sign (kind and key usage).
    const notCa = await issueCustomerCert({ customerId: 'op-sek', publicKey: opA.publicKey, issuer: opA, notBefore: NOW - DAY, notAfter: NOW + DAY }, crypto);
    expect(await both(temp, { trustedIssuers: [notCa] }, NOW)).toBe('CERT_WRONG_KIND');
    // An issuer that has expired takes its certificates with it.
    expect(await both(temp, trust, opA.cert.notAfter.getTime() + SECOND)).toBe('CERT_EXPIRED');
    // Every single-byte change.
    const der = fromBase64Url(temp);
    const seen = new Set<string>();
    for (let i = 0; i < der.length; i++) {
      const bad = der.slice();
      bad[i] = bad[i]! ^ 0x01;
      const result = await both(toBase64Url(bad), trust, NOW);
      expect(['CERT_UNTRUSTED', 'MALFORMED'], `byte ${i}`).toContain(result);
      seen.add(result);
    }
    expect(seen).toEqual(new Set(['CERT_UNTRUSTED', 'MALFORMED']));
    // r or s with its sign byte 00 turned into 01 (a 33-byte number no P-256 signature has): the
    // hand reader must not drop the extra byte and find the old signature good.
    for (let n = 0; n < 64; n++) {
      const der = fromBase64Url(await issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: opA, notBefore: NOW, notAfter: NOW + HOUR }, crypto));
      const padded = der.findIndex((b, i) => i > der.length - 72 && b === 0x02 && der[i + 1] === 0x21 && der[i + 2] === 0x00);
      if (padded < 0) continue;
      const bad = der.slice();
      bad[padded + 2] = 0x01;
      expect(await both(toBase64Url(bad), trust, NOW)).toBe('CERT_UNTRUSTED');
      return;
    }
    throw new Error('no signature with a 33-byte r or s in 64 tries');
  });

  it('refuses to issue under an issuer whose private key is not its certificate’s, and under a non-operator', async () => {
    const stranger = await generateKeyPair(false, crypto);
    expect(await code(issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: { cert: opB.cert, privateKey: stranger.privateKey }, notBefore: NOW, notAfter: NOW + HOUR }, crypto))).toBe(
      'INTERNAL',
    );
    expect(await code(issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: { cert: root, privateKey: stranger.privateKey }, notBefore: NOW, notAfter: NOW + HOUR }, crypto))).toBe(
      'CERT_WRONG_KIND',
    );
    expect(await code(issueTemporaryCertB64({ handle: TX, publicKey: 'bm90IGEga2V5', issuer: opA, notBefore: NOW, notAfter: NOW + HOUR }, crypto))).toBe('MALFORMED');
    expect(await code(issueTemporaryCertB64({ handle: TX, publicKey: sessionSpki, issuer: opA, notBefore: NOW, notAfter: NOW }, crypto))).toBe('MALFORMED');
  });

  const hasOpenssl = !spawnSync('openssl', ['version']).error;
  it.skipIf(!hasOpenssl)('is read and verified by openssl (x509 -text, verify -x509_strict)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'obol-temp-'));
    try {
      const file = (name: string, pem: string) => {
        const path = join(dir, name);
        writeFileSync(path, pem);
        return path;
      };
      const leaf = file('temp.pem', certToPem(parseCert(temp)));
      const text = spawnSync('openssl', ['x509', '-in', leaf, '-noout', '-text'], { encoding: 'utf8' });
      expect(text.status, text.stderr).toBe(0);
      expect(text.stdout).toContain(`URI:urn:obol:tx:${TX}`);
      expect(text.stdout).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
      const at = String(Math.floor(NOW / 1000) + 60);
      const ok = spawnSync(
        'openssl',
        ['verify', '-x509_strict', '-attime', at, '-CAfile', file('root.pem', certToPem(root)), '-untrusted', file('op.pem', certToPem(opA.cert)), leaf],
        { encoding: 'utf8' },
      );
      expect(`${ok.stdout}${ok.stderr}`).toMatch(/: OK$/m);
      const wrong = spawnSync(
        'openssl',
        ['verify', '-x509_strict', '-attime', at, '-CAfile', file('root.pem', certToPem(root)), '-untrusted', file('opb.pem', certToPem(opB.cert)), leaf],
        { encoding: 'utf8' },
      );
      expect(wrong.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
