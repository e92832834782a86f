import { BoundedCache } from '../boundedCache.ts';
import { ObolError } from '../errors.ts';
import { parseTradeHandle } from '../identity.ts';
import { KEY_ALG, SIGN_ALG } from '../keys.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, toBase64Url } from '../webcrypto.ts';
import { bytesEqual, isCanonicalEcdsaCertificate, subjectNameDer } from './der.ts';
import { CertificatePolicyExtension, type PublicKey, SubjectAlternativeNameExtension, SubjectKeyIdentifierExtension, X509Certificate } from './x509.ts';

/**
 * What an Obol certificate is and says: kinds, identity fields, wire forms.
 *
 * Kinds. A certificate's kind is one certificate-policy OID under Obol's private arc. Policies
 * rather than extended key usages: a policy says "issued under the Obol <kind> rules", which is
 * what a kind is, and verifiers that do not know our OIDs (openssl) ignore a non-critical policy
 * where they would refuse an unknown purpose. CA certificates also carry anyPolicy, so RFC 5280
 * policy processing passes the leaf's kind policy through (checked with openssl in the tests).
 *
 * Identity fields. root, operator, customer, merchant, signing: the subject is one UTF8String CN
 * (root name, operator id, customer account id or wallet key id, merchant id, and for an operator's
 * message-signing key the operator id again); a merchant's web origins
 * are SAN URIs. A temporary certificate has an empty subject — no name, no account — and one
 * critical SAN URI `urn:obol:tx:<TransactionIdentity>` (RFC 5280 wants the SAN critical when the
 * subject is empty).
 *
 * Wire form. In JSON a certificate is its DER in base64url without padding (`certToBase64`), the
 * alphabet of every other binary field (messages.ts `CertT`). PEM (`certToPem`) is for files and
 * openssl. `parseCert` reads either, and plain base64 too.
 */

/** Obol's private arc. 99999 is a placeholder enterprise number: register a PEN before production. */
export const OBOL_POLICY_ARC = '1.3.6.1.4.1.99999.1';
export const CERT_KIND_OIDS = {
  root: `${OBOL_POLICY_ARC}.1`,
  operator: `${OBOL_POLICY_ARC}.2`,
  customer: `${OBOL_POLICY_ARC}.3`,
  merchant: `${OBOL_POLICY_ARC}.4`,
  temporary: `${OBOL_POLICY_ARC}.5`,
  /** An operator's message-signing key: exchange tables, acks, clearings, vouchers. Never a CA. */
  signing: `${OBOL_POLICY_ARC}.6`,
} as const;
export type CertKind = keyof typeof CERT_KIND_OIDS;
export const ANY_POLICY = '2.5.29.32.0';
export const TX_URN_PREFIX = 'urn:obol:tx:';

/** The one kind that may sign each kind: the Zone 1 root signs operators, operators sign the rest. */
export const ISSUER_KIND: Readonly<Record<CertKind, CertKind>> = {
  root: 'root',
  operator: 'root',
  customer: 'operator',
  merchant: 'operator',
  temporary: 'operator',
  signing: 'operator',
};
export const CA_KINDS: ReadonlySet<CertKind> = new Set(['root', 'operator']);

export type Cert = X509Certificate;

export interface CertDescription {
  kind: CertKind;
  /** The CN (root name, operator id, customer id, merchant id, operator id of a signing key); for a temporary cert its trade handle. */
  subjectId: string;
  merchantId?: string;
  origins?: string[];
  /** Temporary certificates: the transaction's trade handle (never the TransactionIdentity, which links a logon's deposits). */
  transactionId?: string;
  /** Milliseconds since the epoch (X.509 keeps whole seconds). */
  notBefore: number;
  notAfter: number;
  /** Hexadecimal serial number. */
  serial: string;
  /** The issuer's CN: the operator id for customer, merchant and temporary certificates. */
  issuerName: string;
  /** The subject public key as SPKI DER base64url: ready for keyIdOf / importPublicKey. */
  publicKeySpki: string;
}

/** Largest accepted DER, matching the 8,192-character base64url limit of messages.ts `CertT`. */
const MAX_CERT_BYTES = 6144;
/** basicConstraints, keyUsage, subjectAltName, certificatePolicies: all Obol ever marks critical. */
const KNOWN_CRITICAL = new Set(['2.5.29.19', '2.5.29.15', '2.5.29.17', '2.5.29.32']);

/**
 * Certificates already parsed, by their text: X.509 parsing costs milliseconds and the same
 * certificates (operators', merchants', a session's temporary one) arrive again and again. The
 * text is the DER itself, so a changed certificate is a new key, never a stale hit. Only what
 * parsed and passed every check below is kept.
 */
const parsedCerts = new BoundedCache<string, Cert>(1024);

/** A certificate from PEM, base64url or base64 DER text, or DER bytes. Throws MALFORMED. */
export function parseCert(input: string | Uint8Array): Cert {
  if (typeof input !== 'string' || input.length > MAX_CERT_BYTES * 2) return parseCertUncached(input);
  let cert = parsedCerts.get(input);
  if (!cert) {
    cert = parseCertUncached(input);
    parsedCerts.set(input, cert);
  }
  return cert;
}

function parseCertUncached(input: string | Uint8Array): Cert {
  let der: Uint8Array<ArrayBuffer>;
  if (typeof input === 'string') {
    const pem = /^\s*-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*$/.exec(input);
    const text = (pem ? pem[1]! : input).replace(/\s+/g, '').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    try {
      der = fromBase64Url(text);
    } catch {
      throw new ObolError('MALFORMED', 'a certificate must be PEM or base64url DER');
    }
  } else {
    der = new Uint8Array(input);
  }
  if (der.length === 0 || der.length > MAX_CERT_BYTES) throw new ObolError('MALFORMED', `a certificate must be 1 to ${MAX_CERT_BYTES} bytes of DER`);
  if (!isCanonicalEcdsaCertificate(der)) throw new ObolError('MALFORMED', 'not one DER certificate signed with ECDSA P-256 / SHA-256');
  let cert: Cert;
  try {
    cert = new X509Certificate(der);
    const key = cert.publicKey.algorithm as { name: string; namedCurve?: string };
    if (key.name !== 'ECDSA' || key.namedCurve !== 'P-256') throw new ObolError('MALFORMED', 'an Obol certificate holds an ECDSA P-256 key');
    const seen = new Set<string>();
    for (const e of cert.extensions) {
      if (seen.has(e.type)) throw new ObolError('MALFORMED', `certificate repeats extension ${e.type}`);
      seen.add(e.type);
      if (e.critical && !KNOWN_CRITICAL.has(e.type)) throw new ObolError('MALFORMED', `certificate has an unknown critical extension ${e.type}`);
    }
  } catch (e) {
    if (e instanceof ObolError) throw e;
    throw new ObolError('MALFORMED', 'not a readable X.509 certificate');
  }
  return cert;
}

/**
 * Every certificate in a PEM text (one file or several concatenated: a bundle), in order. Text
 * outside the BEGIN/END blocks is ignored, as openssl ignores it. Throws MALFORMED when there is
 * none or one is unreadable.
 */
export function parseCertBundle(text: string): Cert[] {
  const blocks = typeof text === 'string' ? text.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g) : null;
  if (!blocks) throw new ObolError('MALFORMED', 'no PEM certificate found');
  return blocks.map((b) => parseCert(b));
}

/** DER as base64url without padding: the JSON wire form. */
export function certToBase64(cert: Cert): string {
  return toBase64Url(new Uint8Array(cert.rawData));
}

/**
 * PEM, for files and openssl: LF line ends and a final newline (RFC 7468 §5.1 text ends its lines),
 * so that files written one by one concatenate into a bundle openssl reads as several certificates.
 * Without it, `cat a.pem b.pem` glues "-----END CERTIFICATE----------BEGIN CERTIFICATE-----" and
 * openssl finds none.
 */
export function certToPem(cert: Cert): string {
  const pem = cert.toString('pem').replace(/\r\n/g, '\n');
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** Several certificates as one PEM bundle (leaf first, as TLS chains are written). */
export function certsToPem(certs: readonly Cert[]): string {
  return certs.map(certToPem).join('');
}

/** Descriptions already read, per certificate object (a parsed certificate is never changed). */
const descriptions = new WeakMap<Cert, CertDescription>();

/** Reads kind and identity fields. Says nothing about trust: that is verifyChain's job. */
export function describeCert(cert: Cert): CertDescription {
  let d = descriptions.get(cert);
  if (!d) {
    d = describeCertUncached(cert);
    descriptions.set(cert, d);
  }
  // A copy: callers may change what they were given.
  return { ...d, ...(d.origins ? { origins: [...d.origins] } : {}) };
}

function describeCertUncached(cert: Cert): CertDescription {
  const kinds = (cert.getExtension(CertificatePolicyExtension)?.policies ?? []).flatMap((oid) =>
    (Object.keys(CERT_KIND_OIDS) as CertKind[]).filter((k) => CERT_KIND_OIDS[k] === oid),
  );
  if (kinds.length !== 1) throw new ObolError('CERT_WRONG_KIND', 'not an Obol certificate: it must carry exactly one Obol kind policy');
  const kind = kinds[0]!;
  const cns = cert.subjectName.getField('CN');
  const sans = cert.getExtension(SubjectAlternativeNameExtension)?.names.items ?? [];
  const uris = sans.filter((n) => n.type === 'url').map((n) => n.value);
  const d: CertDescription = {
    kind,
    subjectId: '',
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    serial: cert.serialNumber,
    issuerName: cert.issuerName.getField('CN')[0] ?? cert.issuer,
    publicKeySpki: toBase64Url(new Uint8Array(cert.publicKey.rawData)),
  };
  if (kind === 'temporary') {
    if (cns.length !== 0 || sans.length !== 1 || uris.length !== 1 || !uris[0]!.startsWith(TX_URN_PREFIX)) {
      throw new ObolError('MALFORMED', `a temporary certificate names nothing but one ${TX_URN_PREFIX}<trade handle>`);
    }
    d.transactionId = parseTradeHandle(uris[0]!.slice(TX_URN_PREFIX.length));
    d.subjectId = d.transactionId;
    return d;
  }
  if (cns.length !== 1) throw new ObolError('MALFORMED', `a ${kind} certificate has exactly one subject CN`);
  d.subjectId = cns[0]!;
  if (kind === 'merchant') {
    d.merchantId = d.subjectId;
    d.origins = checkOrigins(uris);
  }
  return d;
}

/** The certificate's public key imported for ECDSA P-256 verify. Import once per session and keep it. */
export function publicKeyOf(cert: Cert, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  return cert.publicKey.export(KEY_ALG, ['verify'], crypto);
}

/**
 * Issuer keys imported once, by their SPKI: a chain check would otherwise import the issuer's key
 * for every certificate it checks (a key import costs more than a verify). Per WebCrypto handle,
 * since a CryptoKey belongs to the provider that made it.
 */
const issuerKeys = new WeakMap<WebCrypto, BoundedCache<string, Promise<CryptoKey>>>();
/**
 * Signatures already found good: the child's DER (what was signed, and the signature) with the
 * issuer's SPKI. Only good ones are kept, and the key is the whole content, so nothing that
 * changed — or was never checked — is ever taken from here.
 */
const goodSignatures = new WeakMap<WebCrypto, BoundedCache<string, true>>();

function goodSignaturesOf(crypto: WebCrypto): BoundedCache<string, true> {
  let good = goodSignatures.get(crypto);
  if (!good) {
    good = new BoundedCache(4096);
    goodSignatures.set(crypto, good);
  }
  return good;
}

/** An issuer's key (SPKI DER, base64url) imported for verify, once per provider. */
export function issuerKey(spki: string, crypto: WebCrypto): Promise<CryptoKey> {
  let keys = issuerKeys.get(crypto);
  if (!keys) {
    keys = new BoundedCache(1024);
    issuerKeys.set(crypto, keys);
  }
  let imported = keys.get(spki);
  if (!imported) {
    imported = Promise.resolve().then(() => crypto.subtle.importKey('spki', fromBase64Url(spki), KEY_ALG, true, ['verify']));
    keys.set(spki, imported);
    imported.catch(() => keys.delete(spki));
  }
  return imported;
}

/** Whether `key` verifies the certificate's signature; an unreadable signature is a bad one. */
export async function signedBy(cert: Cert, key: PublicKey, crypto: WebCrypto): Promise<boolean> {
  const good = goodSignaturesOf(crypto);
  const spki = toBase64Url(new Uint8Array(key.rawData));
  const seen = `${spki}|${toBase64Url(new Uint8Array(cert.rawData))}`;
  if (good.get(seen)) return true;
  try {
    const ok = await cert.verify({ publicKey: await issuerKey(spki, crypto), signatureOnly: true }, crypto);
    if (ok) good.set(seen, true);
    return ok;
  } catch {
    return false;
  }
}

/**
 * The same check as `signedBy`, on a to-be-signed part and its signature (r ‖ s) read by hand
 * (temporary.ts): `certB64` is the whole certificate's wire form, under which a good signature is
 * remembered for both.
 */
export async function tbsSignedBy(certB64: string, tbs: Uint8Array<ArrayBuffer>, signature: Uint8Array<ArrayBuffer>, issuerSpki: string, crypto: WebCrypto): Promise<boolean> {
  const good = goodSignaturesOf(crypto);
  const seen = `${issuerSpki}|${certB64}`;
  if (good.get(seen)) return true;
  try {
    const ok = await crypto.subtle.verify(SIGN_ALG, await issuerKey(issuerSpki, crypto), signature, tbs);
    if (ok) good.set(seen, true);
    return ok;
  } catch {
    return false;
  }
}

/** What issuing under, or checking against, a certificate needs of it by hand: read once per certificate. */
export interface IssuerFacts {
  /** Its subject Name, DER: its children's issuer Name, byte for byte. */
  subjectName: Uint8Array;
  /** Its subject key identifier (absent: none). */
  keyId?: Uint8Array;
  /** Its SPKI, base64url. */
  spki: string;
  /** Its CN, as `describeCert` gives a child's issuerName. */
  cn: string;
}
const issuerFactsCache = new WeakMap<Cert, IssuerFacts | null>();

/** Undefined when the certificate's subject Name cannot be read by hand (the general path still can). */
export function issuerFactsOf(cert: Cert): IssuerFacts | undefined {
  let facts = issuerFactsCache.get(cert);
  if (facts === undefined) {
    const name = subjectNameDer(new Uint8Array(cert.rawData));
    const ski = cert.getExtension(SubjectKeyIdentifierExtension);
    facts = name
      ? {
          subjectName: new Uint8Array(name),
          ...(ski ? { keyId: fromHex(ski.keyId) } : {}),
          spki: toBase64Url(new Uint8Array(cert.publicKey.rawData)),
          cn: cert.subjectName.getField('CN')[0] ?? cert.subject,
        }
      : null;
    issuerFactsCache.set(cert, facts);
  }
  return facts ?? undefined;
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array((hex.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)));
}

export function sameCert(a: Cert, b: Cert): boolean {
  return a === b || bytesEqual(new Uint8Array(a.rawData), new Uint8Array(b.rawData));
}

export function checkCn(value: string, what: string): string {
  // 64 = ub-common-name (RFC 5280); control characters have no place in an id.
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || /\p{Cc}/u.test(value)) {
    throw new ObolError('INVALID_IDENTITY', `${what} must be 1 to 64 printable characters`);
  }
  return value;
}

/** Web origins exactly as browsers serialise them (`https://shop.example`, `http://localhost:8080`). */
export function checkOrigins(origins: readonly string[]): string[] {
  if (!Array.isArray(origins) || origins.length === 0) throw new ObolError('MALFORMED', 'a merchant certificate names at least one web origin');
  for (const o of origins) {
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== o) {
      throw new ObolError('MALFORMED', `not a web origin: ${JSON.stringify(o)}`);
    }
  }
  if (new Set(origins).size !== origins.length) throw new ObolError('MALFORMED', 'merchant origins repeat');
  return [...origins];
}
