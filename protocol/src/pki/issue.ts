import { BoundedCache } from '../boundedCache.ts';
import { ObolError } from '../errors.ts';
import { isOperatorId, parseTradeHandle } from '../identity.ts';
import { SIGN_ALG, generateSigningKeyPair } from '../keys.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, toBase64Url } from '../webcrypto.ts';
import {
  ANY_POLICY,
  CA_KINDS,
  CERT_KIND_OIDS,
  type Cert,
  type CertDescription,
  type CertKind,
  ISSUER_KIND,
  TX_URN_PREFIX,
  certToBase64,
  checkCn,
  checkOrigins,
  describeCert,
  issuerFactsOf,
  parseCert,
  signedBy,
  tbsSignedBy,
} from './cert.ts';
import { encodeCertificate, encodeTemporaryTbs, isPlainP256Spki, spkiPoint } from './temporary.ts';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  CertificatePolicyExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  PublicKey,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from './x509.ts';

/** Whoever signs a certificate: its own certificate and the matching private key. */
export interface CertIssuer {
  cert: Cert;
  privateKey: CryptoKey;
}
/** A subject's public key: a CryptoKey, or SPKI DER in base64url as it arrives in messages. */
export type SubjectKey = CryptoKey | string;
/** Milliseconds since the epoch; X.509 keeps whole seconds, so sub-second parts drop. */
export interface ValidityInput {
  notBefore: number;
  notAfter: number;
}

/** Wallet, session, merchant and operator keys: ECDSA P-256, private half non-extractable by default. */
export function generateKeyPair(extractable = false, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKeyPair> {
  return generateSigningKeyPair(extractable, crypto);
}

/** Zone 1: the interbank root, self-signed. */
export async function createRootCa(params: { name: string; keys: CryptoKeyPair } & ValidityInput, crypto: WebCrypto = defaultCrypto()): Promise<Cert> {
  const subject: Subject = { kind: 'root', cn: checkCn(params.name, 'root name') };
  return issue(subject, params.keys.publicKey, { cert: null, privateKey: params.keys.privateKey }, params, crypto);
}

/** Zone 1: an operator (bank or telco), signed by the root; it signs only end-entity certificates. */
export async function issueOperatorCert(
  params: { operatorId: string; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  if (!isOperatorId(params.operatorId)) {
    throw new ObolError('INVALID_IDENTITY', `not an operator id: ${JSON.stringify(params.operatorId)}`);
  }
  return issue({ kind: 'operator', cn: params.operatorId }, params.publicKey, params.issuer, params, crypto);
}

/**
 * An operator's message-signing key, certified by the operator's issuing key. The issuing (CA) key
 * signs certificates only; this leaf (keyUsage digitalSignature, no CA flag) signs every protocol
 * message the operator sends, so the key that is online all the time cannot mint certificates.
 * Peers, merchants and wallets take the operator's message key only from this certificate.
 */
export async function issueSigningCert(
  params: { operatorId: string; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  if (describeCert(params.issuer.cert).subjectId !== params.operatorId) {
    throw new ObolError('CERT_WRONG_KIND', `a signing certificate for ${params.operatorId} is issued by that operator's own certificate`);
  }
  return issue({ kind: 'signing', cn: params.operatorId }, params.publicKey, params.issuer, params, crypto);
}

/** Zones 2–3: the wallet's long-term key, named by the customer's account id (or wallet key id). */
export async function issueCustomerCert(
  params: { customerId: string; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  return issue({ kind: 'customer', cn: checkCn(params.customerId, 'customer id') }, params.publicKey, params.issuer, params, crypto);
}

/** Zones 2–3: a merchant's key, naming the merchant id and the web origins it sells on. */
export async function issueMerchantCert(
  params: { merchantId: string; origins: string[]; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  const subject: Subject = { kind: 'merchant', cn: checkCn(params.merchantId, 'merchant id'), origins: checkOrigins(params.origins) };
  return issue(subject, params.publicKey, params.issuer, params, crypto);
}

/**
 * Zone 4: the session key and the transaction's trade handle, nothing else — not the
 * TransactionIdentity, which names the logon: the merchant and its operator see this certificate.
 * Validity = the session timeout.
 */
export async function issueTemporaryCert(
  params: { handle: string; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  return parseCert(await issueTemporaryCertB64(params, crypto));
}

/**
 * `issueTemporaryCert` in its wire form (base64url DER), without reading back what it wrote: the
 * session open's path. Written by hand in the one fixed profile (temporary.ts), which the tests
 * hold byte for byte to what @peculiar/x509 writes and have openssl check; a subject key in any
 * other form than the one WebCrypto exports goes through the general encoder.
 */
export async function issueTemporaryCertB64(
  params: { handle: string; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<string> {
  const subject: Subject = { kind: 'temporary', transactionId: parseTradeHandle(params.handle) };
  const issuerKind = describeCert(params.issuer.cert).kind;
  if (issuerKind !== ISSUER_KIND.temporary) {
    throw new ObolError('CERT_WRONG_KIND', `a temporary certificate is issued by a ${ISSUER_KIND.temporary}, not a ${issuerKind}`);
  }
  let spki: Uint8Array<ArrayBuffer> | undefined;
  try {
    spki = typeof params.publicKey === 'string' ? fromBase64Url(params.publicKey) : new Uint8Array(await crypto.subtle.exportKey('spki', params.publicKey));
  } catch {
    spki = undefined;
  }
  const facts = issuerFactsOf(params.issuer.cert);
  if (!spki || !isPlainP256Spki(spki) || !facts) {
    // Refusals (a key that is no P-256 SPKI) and unusual forms: the general encoder says which.
    return certToBase64(await issue(subject, params.publicKey, params.issuer, params, crypto));
  }
  // The same validity rules as `issue`: never outside the issuer's, never empty, whole seconds.
  const notBefore = Math.max(params.notBefore, params.issuer.cert.notBefore.getTime());
  const notAfter = Math.min(params.notAfter, params.issuer.cert.notAfter.getTime());
  if (!(Number.isFinite(notBefore) && Number.isFinite(notAfter) && notBefore < notAfter)) {
    throw new ObolError('MALFORMED', 'certificate validity is empty: notBefore must come before notAfter, inside the issuer’s validity');
  }
  const authorityKeyId = facts.keyId ?? new Uint8Array(await crypto.subtle.digest('SHA-1', spkiPoint(fromBase64Url(facts.spki))));
  const tbs = encodeTemporaryTbs(
    {
      serial: fromHexSerial(randomSerial(crypto)),
      issuerName: facts.subjectName,
      notBefore: Math.floor(notBefore / 1000) * 1000,
      notAfter: Math.floor(notAfter / 1000) * 1000,
      spki,
      subjectKeyId: new Uint8Array(await crypto.subtle.digest('SHA-1', spkiPoint(spki))),
      authorityKeyId,
      handle: subject.transactionId!,
    },
    CERT_KIND_OIDS.temporary,
  );
  const signature = new Uint8Array(await crypto.subtle.sign(SIGN_ALG, params.issuer.privateKey, tbs));
  const der = toBase64Url(encodeCertificate(tbs, signature));
  await checkIssuerKeyOnce(params.issuer, der, tbs, signature, facts.spki, crypto);
  return der;
}

/**
 * The temporary certificate of a description (`verifyChain`'s answer) re-issued under `issuer`, in
 * its wire form: `reissue` for the acquirer's step 4 without reading the certificate again.
 */
export function reissueTemporaryB64(d: CertDescription, issuer: CertIssuer, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  if (d.kind !== 'temporary' || d.transactionId === undefined) throw new ObolError('CERT_WRONG_KIND', `not a temporary certificate but a ${d.kind} one`);
  return issueTemporaryCertB64({ handle: d.transactionId, publicKey: d.publicKeySpki, issuer, notBefore: d.notBefore, notAfter: d.notAfter }, crypto);
}

/** Issuers (private key and certificate) whose key is known to belong to their certificate. */
const matchedIssuers = new WeakMap<CryptoKey, WeakSet<Cert>>();

/**
 * Catches an issuer whose private key does not belong to its certificate before anyone sees what
 * it signed, as `issue` does for every certificate; once per issuer, as the answer cannot change.
 */
async function checkIssuerKeyOnce(issuer: CertIssuer, der: string, tbs: Uint8Array<ArrayBuffer>, signature: Uint8Array<ArrayBuffer>, spki: string, crypto: WebCrypto): Promise<void> {
  let certs = matchedIssuers.get(issuer.privateKey);
  if (certs?.has(issuer.cert)) return;
  if (!(await tbsSignedBy(der, tbs, signature, spki, crypto))) {
    throw new ObolError('INTERNAL', 'the issuer’s private key does not match its certificate');
  }
  if (!certs) {
    certs = new WeakSet();
    matchedIssuers.set(issuer.privateKey, certs);
  }
  certs.add(issuer.cert);
}

function fromHexSerial(hex: string): Uint8Array {
  return new Uint8Array((hex.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)));
}

/**
 * The same subject (public key, kind, identity fields) under a new issuer: the merchant's operator
 * re-issues a temporary certificate for its merchant, the customer's operator re-issues a merchant
 * certificate for its wallet. The copy never outlives (or predates) the original — the re-issuer
 * vouches only for what the original issuer vouched for. It does not check the original: call
 * `verifyChain` on it first.
 */
export async function reissue(
  cert: Cert,
  issuer: CertIssuer,
  opts: { notBefore?: number; notAfter?: number } = {},
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  const d = describeCert(cert);
  if (d.kind === 'root') throw new ObolError('CERT_WRONG_KIND', 'a root certificate is self-signed and cannot be re-issued');
  const validity = {
    notBefore: Math.max(opts.notBefore ?? d.notBefore, d.notBefore),
    notAfter: Math.min(opts.notAfter ?? d.notAfter, d.notAfter),
  };
  if (d.kind === 'temporary') return parseCert(await issueTemporaryCertB64({ handle: d.transactionId!, publicKey: d.publicKeySpki, issuer, ...validity }, crypto));
  const cn = d.subjectId;
  return issue({ kind: d.kind, cn, origins: d.origins, transactionId: d.transactionId }, d.publicKeySpki, issuer, validity, crypto);
}

/** Copies already made, per issuer, by the original's DER (base64url). */
const reissued = new WeakMap<CertIssuer, BoundedCache<string, Cert>>();

/**
 * `reissue` made once per original and issuer, then handed out again while it is in date. A copy
 * takes its validity from the original (and the issuer), not from the time it is made, so a new
 * copy would say exactly what the kept one says; making one costs an X.509 encoding and a signature
 * on every session open (the customer's operator re-issues the merchant's certificate for each).
 * Keyed by the original's DER: a changed (renewed, re-keyed) certificate is a new entry.
 */
export async function reissueOnce(cert: Cert, issuer: CertIssuer, now: number, crypto: WebCrypto = defaultCrypto()): Promise<Cert> {
  let copies = reissued.get(issuer);
  if (!copies) {
    copies = new BoundedCache(256);
    reissued.set(issuer, copies);
  }
  const der = toBase64Url(new Uint8Array(cert.rawData));
  const kept = copies.get(der);
  if (kept && now >= kept.notBefore.getTime() && now <= kept.notAfter.getTime()) return kept;
  const copy = await reissue(cert, issuer, {}, crypto);
  copies.set(der, copy);
  return copy;
}

interface Subject {
  kind: CertKind;
  cn?: string;
  origins?: string[];
  transactionId?: string;
}

async function issue(
  subject: Subject,
  subjectKey: SubjectKey,
  issuer: { cert: Cert | null; privateKey: CryptoKey },
  validity: ValidityInput,
  crypto: WebCrypto,
): Promise<Cert> {
  const spki = await spkiOf(subjectKey, crypto);
  let { notBefore, notAfter } = validity;
  if (issuer.cert) {
    const issuerKind = describeCert(issuer.cert).kind;
    if (issuerKind !== ISSUER_KIND[subject.kind]) {
      throw new ObolError('CERT_WRONG_KIND', `a ${subject.kind} certificate is issued by a ${ISSUER_KIND[subject.kind]}, not a ${issuerKind}`);
    }
    // A certificate never outlives the certificate of the one who vouches for it.
    notBefore = Math.max(notBefore, issuer.cert.notBefore.getTime());
    notAfter = Math.min(notAfter, issuer.cert.notAfter.getTime());
  }
  if (!(Number.isFinite(notBefore) && Number.isFinite(notAfter) && notBefore < notAfter)) {
    throw new ObolError('MALFORMED', 'certificate validity is empty: notBefore must come before notAfter, inside the issuer’s validity');
  }
  // UTF8String, as RFC 5280 asks of new certificates, whatever characters the id uses.
  const subjectName = subject.cn === undefined ? undefined : new Name([{ CN: [{ utf8String: subject.cn }] }]);
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(crypto),
      subject: subjectName,
      // A root names itself; everyone else copies the issuer's subject byte for byte.
      issuer: issuer.cert ? issuer.cert.subjectName : subjectName,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: spki,
      signingKey: issuer.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      extensions: await extensionsFor(subject, spki, issuer.cert, crypto),
    },
    crypto,
  );
  // Catches an issuer whose private key does not belong to its certificate before anyone sees it.
  if (!(await signedBy(cert, (issuer.cert ?? cert).publicKey, crypto))) {
    throw new ObolError('INTERNAL', 'the issuer’s private key does not match its certificate');
  }
  return cert;
}

async function extensionsFor(subject: Subject, spki: ArrayBuffer, issuerCert: Cert | null, crypto: WebCrypto): Promise<Extension[]> {
  const isCa = CA_KINDS.has(subject.kind);
  const ext: Extension[] = [];
  if (isCa) {
    // pathLen: a root signs operators which sign leaves (1); an operator signs only leaves (0).
    ext.push(new BasicConstraintsExtension(true, subject.kind === 'root' ? 1 : 0, true));
    // Certificates only: an operator's protocol messages are signed by its separate signing key.
    ext.push(new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true));
  } else {
    // Leaves omit basicConstraints: absent means not a CA (RFC 5280 4.2.1.9).
    ext.push(new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true));
  }
  // Every certificate names its own key (RFC 5280 4.2.1.2 asks it of CAs and recommends it for
  // leaves): tools and verifiers find a key by it, and an issuer's id becomes its children's AKI.
  ext.push(await SubjectKeyIdentifierExtension.create(spki, false, crypto));
  if (issuerCert) {
    // Lets verifiers (and openssl) pick the right issuer among same-named certificates.
    const issuerSki = issuerCert.getExtension(SubjectKeyIdentifierExtension);
    ext.push(
      issuerSki
        ? new AuthorityKeyIdentifierExtension(issuerSki.keyId, false)
        : await AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, crypto),
    );
  }
  const kindOid = CERT_KIND_OIDS[subject.kind];
  ext.push(new CertificatePolicyExtension(isCa ? [kindOid, ANY_POLICY] : [kindOid], false));
  if (subject.kind === 'merchant') {
    ext.push(new SubjectAlternativeNameExtension((subject.origins ?? []).map((value) => ({ type: 'url' as const, value })), false));
  }
  if (subject.kind === 'temporary') {
    // The subject is empty, so the SAN must be critical (RFC 5280 4.2.1.6).
    ext.push(new SubjectAlternativeNameExtension([{ type: 'url', value: `${TX_URN_PREFIX}${subject.transactionId}` }], true));
  }
  return ext;
}

/** The subject's public key as SPKI bytes, refused unless it is ECDSA P-256 (the one algorithm of the PKI). */
export async function spkiOf(key: SubjectKey, crypto: WebCrypto): Promise<ArrayBuffer> {
  let spki: ArrayBuffer;
  let alg: { name?: string; namedCurve?: string };
  try {
    spki = typeof key === 'string' ? fromBase64Url(key).buffer : await crypto.subtle.exportKey('spki', key);
    alg = new PublicKey(spki).algorithm as typeof alg;
  } catch {
    throw new ObolError('MALFORMED', 'subject public key is not SPKI');
  }
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new ObolError('MALFORMED', 'subject public key must be ECDSA P-256');
  return spki;
}

/** 128 random bits as a positive INTEGER: top bit clear and first byte non-zero, so DER adds no padding. */
export function randomSerial(crypto: WebCrypto): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) || 0x01;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
