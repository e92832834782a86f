import { ObolError } from '../errors.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, toBase64Url } from '../webcrypto.ts';
import { importPublicKey, keyIdOf } from '../keys.ts';
import {
  CA_KINDS,
  CERT_KIND_OIDS,
  type Cert,
  type CertDescription,
  type CertKind,
  ISSUER_KIND,
  certToBase64,
  describeCert,
  issuerFactsOf,
  parseCert,
  sameCert,
  signedBy,
  tbsSignedBy,
} from './cert.ts';
import { bytesEqual } from './der.ts';
import { readTemporaryCert } from './temporary.ts';
import { AuthorityKeyIdentifierExtension, BasicConstraintsExtension, KeyUsageFlags, KeyUsagesExtension, SubjectKeyIdentifierExtension } from './x509.ts';

/**
 * Where trust comes from. `trustedRoots` (+ `intermediates`): the full Zone 1 path up to an
 * interbank root. `trustedIssuers`: the leaf must be signed directly by one of these — a merchant
 * that trusts only its own operator's certificate (Zone 4 re-issue: no foreign operators, no CRLs).
 */
export type TrustAnchors = { intermediates?: Cert[]; trustedRoots: Cert[] } | { trustedIssuers: Cert[] };

export interface VerifyOptions {
  /** Milliseconds since the epoch, from the caller's Clock. */
  now: number;
  expectKind?: CertKind | readonly CertKind[];
}

/**
 * A loop guard only. leaf → operator → root is the longest Obol path and the kind rules enforce
 * that; the guard is looser so that a misplaced certificate is reported as the wrong kind.
 */
const MAX_CHAIN = 6;

/**
 * Verifies `leaf` (a certificate or its wire form) at `now` and returns its description. Asks in
 * this order: is it ours — every signature up to an anchor (CERT_UNTRUSTED); is every link the
 * right kind — each issuer a CA of the one kind allowed to sign the child, the leaf of
 * `expectKind` (CERT_WRONG_KIND); is every certificate in date, anchors included
 * (CERT_NOT_YET_VALID, CERT_EXPIRED). Anchors are trusted as given, without their own signature.
 */
export async function verifyChain(
  leaf: Cert | string,
  trust: TrustAnchors,
  opts: VerifyOptions,
  crypto: WebCrypto = defaultCrypto(),
): Promise<CertDescription> {
  // A temporary certificate in its wire form, signed by the first trusted issuer (every session
  // open, three times): read by hand. Anything else, and every refusal, takes the general path.
  if (typeof leaf === 'string' && 'trustedIssuers' in trust) {
    const path = await temporaryPath(leaf, trust.trustedIssuers, crypto);
    if (path) return checkPath([path.leaf, linkOf(path.issuer)], false, path.description, opts);
  }
  const leafCert = typeof leaf === 'string' ? parseCert(leaf) : leaf;
  const rootsMode = 'trustedRoots' in trust;
  const anchors = rootsMode ? trust.trustedRoots : trust.trustedIssuers;
  const candidates = rootsMode ? [...anchors, ...(trust.intermediates ?? [])] : anchors;

  // 1. Build the path by signature, from the leaf up to a certificate that is an anchor.
  const chain: Cert[] = [leafCert];
  let top = leafCert;
  while (!anchors.some((a) => sameCert(a, top))) {
    const issuer = chain.length < MAX_CHAIN ? await findIssuer(top, candidates, crypto) : undefined;
    if (!issuer) throw new ObolError('CERT_UNTRUSTED', `no trusted certificate signed ${nameOf(top)} (issuer "${top.issuer}")`);
    chain.push(issuer);
    top = issuer;
  }
  const links = chain.map(linkOf);
  return checkPath(links, rootsMode, () => describeCert(leafCert), opts);
}

/** What the kind and date rules read of each certificate on a path. */
interface Link {
  kind: CertKind;
  ca: boolean;
  /** keyUsage bits; absent when the certificate has no keyUsage. */
  usages?: number;
  pathLength?: number;
  notBefore: Date;
  notAfter: Date;
  name: string;
}

const links = new WeakMap<Cert, Link>();

function linkOf(cert: Cert): Link {
  let link = links.get(cert);
  if (!link) {
    const bc = cert.getExtension(BasicConstraintsExtension);
    const ku = cert.getExtension(KeyUsagesExtension);
    link = {
      kind: describeCert(cert).kind,
      ca: Boolean(bc?.ca),
      ...(ku ? { usages: ku.usages } : {}),
      ...(bc?.pathLength !== undefined ? { pathLength: bc.pathLength } : {}),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      name: nameOf(cert),
    };
    links.set(cert, link);
  }
  return link;
}

/** Steps 2 and 3 of `verifyChain` on a path already built by signature (leaf first). */
function checkPath(chain: Link[], rootsMode: boolean, leafDescription: CertDescription | (() => CertDescription), opts: VerifyOptions): CertDescription {
  // 2. Kinds: each link as ISSUER_KIND says, issuers are CAs allowed to sign, CA flags match kinds.
  for (let i = 0; i < chain.length; i++) {
    const link = chain[i]!;
    if (CA_KINDS.has(link.kind) !== link.ca) throw new ObolError('CERT_WRONG_KIND', `${link.name} is a ${link.kind} certificate with the wrong CA flag`);
    if (i === 0) continue;
    const child = chain[i - 1]!.kind;
    if (link.kind !== ISSUER_KIND[child]) throw new ObolError('CERT_WRONG_KIND', `a ${child} certificate is issued by a ${ISSUER_KIND[child]}, not a ${link.kind}`);
    // pathLength counts the CA certificates between this issuer and the leaf: i - 1 of them.
    if ((link.usages !== undefined && !(link.usages & KeyUsageFlags.keyCertSign)) || (link.pathLength !== undefined && link.pathLength < i - 1)) {
      throw new ObolError('CERT_WRONG_KIND', `${link.name} may not sign this certificate`);
    }
  }
  if (rootsMode && chain[chain.length - 1]!.kind !== 'root') throw new ObolError('CERT_WRONG_KIND', 'a trusted root must be a root certificate');
  const description = typeof leafDescription === 'function' ? leafDescription() : leafDescription;
  const expected = opts.expectKind === undefined ? undefined : ([] as CertKind[]).concat(opts.expectKind);
  if (expected && !expected.includes(description.kind)) {
    throw new ObolError('CERT_WRONG_KIND', `expected a ${expected.join(' or ')} certificate, got a ${description.kind} certificate`);
  }

  // 3. Validity, inclusive at both ends (RFC 5280 4.1.2.5).
  for (const c of chain) {
    if (opts.now < c.notBefore.getTime()) throw new ObolError('CERT_NOT_YET_VALID', `${c.name} is valid only from ${c.notBefore.toISOString()}`);
    if (opts.now > c.notAfter.getTime()) throw new ObolError('CERT_EXPIRED', `${c.name} expired at ${c.notAfter.toISOString()}`);
  }
  return description;
}

/**
 * The path of a temporary certificate in the fixed profile (temporary.ts) whose issuer is the
 * first trusted issuer — the path the general search (`findIssuer`) would build, found without
 * parsing: the same issuer Name byte for byte, the issuer's key id as its authority key id, and
 * its signature good under the issuer's key. Undefined whenever it is anything else, so that the
 * general path decides (and refuses) exactly as it always has.
 */
async function temporaryPath(
  leaf: string,
  anchors: readonly Cert[],
  crypto: WebCrypto,
): Promise<{ leaf: Link; issuer: Cert; description: CertDescription } | undefined> {
  const anchor = anchors[0];
  if (!anchor || leaf.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(leaf)) return undefined;
  const t = readTemporaryCert(fromBase64Url(leaf), CERT_KIND_OIDS.temporary);
  const facts = issuerFactsOf(anchor);
  if (!t || !facts || anchors.some((a) => bytesEqual(new Uint8Array(a.rawData), t.der))) return undefined;
  if (!bytesEqual(facts.subjectName, t.issuerName) || (facts.keyId && !bytesEqual(facts.keyId, t.authorityKeyId))) return undefined;
  if (!(await tbsSignedBy(leaf, t.tbs, t.signature, facts.spki, crypto))) return undefined;
  const serial = Array.from(t.serial, (b) => b.toString(16).padStart(2, '0')).join('');
  const notBefore = new Date(t.notBefore);
  const notAfter = new Date(t.notAfter);
  return {
    leaf: { kind: 'temporary', ca: false, usages: KeyUsageFlags.digitalSignature, notBefore, notAfter, name: `certificate serial ${serial}` },
    issuer: anchor,
    description: {
      kind: 'temporary',
      subjectId: t.handle,
      transactionId: t.handle,
      notBefore: t.notBefore,
      notAfter: t.notAfter,
      serial,
      issuerName: facts.cn,
      publicKeySpki: toBase64Url(new Uint8Array(t.spki)),
    },
  };
}

/** A candidate named as the child's issuer, with a matching key id, whose key verifies the child's signature. */
async function findIssuer(child: Cert, candidates: Cert[], crypto: WebCrypto): Promise<Cert | undefined> {
  const aki = child.getExtension(AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase();
  const issuerName = child.issuerName.toString();
  for (const c of candidates) {
    if (sameCert(c, child) || c.subjectName.toString() !== issuerName) continue;
    const ski = c.getExtension(SubjectKeyIdentifierExtension)?.keyId.toLowerCase();
    if (aki && ski && aki !== ski) continue;
    if (await signedBy(child, c.publicKey, crypto)) return c;
  }
  return undefined;
}

/** For messages: the subject, or for a temporary certificate (no subject) its serial number. */
function nameOf(cert: Cert): string {
  return cert.subject ? `certificate "${cert.subject}"` : `certificate serial ${cert.serialNumber}`;
}

/** An operator's message key as a verifier keeps it: checked once, imported once, never per message. */
export interface OperatorMessageKey {
  operatorId: string;
  /** The signing certificate, base64url DER. */
  certB64: string;
  kid: string;
  key: CryptoKey;
  /** When the signing certificate expires (ms): look again after that. */
  notAfter: number;
}

/**
 * Checks an operator's signing certificate against that operator's (already trusted) certificate:
 * issued by it, of kind `signing`, naming the same operator, in date. Returns the key every message
 * of that operator must verify under; a message signed with the operator's issuing key (or anything
 * else) has another key id and is refused as UNKNOWN_KEY.
 */
export async function operatorMessageKey(
  signingCert: Cert | string,
  operatorCert: Cert,
  now: number,
  crypto: WebCrypto = defaultCrypto(),
): Promise<OperatorMessageKey> {
  const cert = typeof signingCert === 'string' ? parseCert(signingCert) : signingCert;
  const d = await verifyChain(cert, { trustedIssuers: [operatorCert] }, { now, expectKind: 'signing' }, crypto);
  const operatorId = describeCert(operatorCert).subjectId;
  if (d.subjectId !== operatorId) {
    throw new ObolError('CERT_UNTRUSTED', `the signing certificate names ${d.subjectId}, not operator ${operatorId}`);
  }
  return {
    operatorId,
    certB64: certToBase64(cert),
    kid: await keyIdOf(d.publicKeySpki, crypto),
    key: await importPublicKey(d.publicKeySpki, crypto),
    notAfter: d.notAfter,
  };
}
