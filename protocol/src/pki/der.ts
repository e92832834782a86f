/**
 * Just enough DER reading to insist that a certificate has one encoding. The signature covers the
 * to-be-signed bytes exactly, but not the outer wrapper (its length bytes, the outer algorithm, the
 * BIT STRING holding the signature), and @peculiar/x509 reads that wrapper leniently (trailing
 * bytes, non-zero unused bits, padded INTEGERs in the signature). Without these checks one
 * certificate could travel as several byte strings that all verify.
 */

/** AlgorithmIdentifier { ecdsa-with-SHA256 } with absent parameters (RFC 5758 3.2). */
const ECDSA_WITH_SHA256 = new Uint8Array([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);

export interface DerElement {
  tag: number;
  /** The tag byte: where the element begins. */
  at: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
}

/** The element at `at`, which must end by `limit`; undefined if it overruns or its length is not minimal. */
export function derElement(der: Uint8Array, at: number, limit: number): DerElement | undefined {
  if (at + 2 > limit) return undefined;
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || start + n > limit || der[start] === 0) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    if (len < 0x80) return undefined;
    start += n;
  }
  return start + len > limit ? undefined : { tag, at, start, end: start + len };
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }, with
 * nothing after it, ecdsa-with-SHA256 both outside and inside the signed part, no unused bits and
 * a DER ECDSA-Sig-Value.
 */
export function isCanonicalEcdsaCertificate(der: Uint8Array): boolean {
  const outer = derElement(der, 0, der.length);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return false;
  const tbs = derElement(der, outer.start, outer.end);
  if (tbs?.tag !== 0x30) return false;
  const alg = derElement(der, tbs.end, outer.end);
  if (!alg || !bytesEqual(der.subarray(tbs.end, alg.end), ECDSA_WITH_SHA256)) return false;
  const bits = derElement(der, alg.end, outer.end);
  if (bits?.tag !== 0x03 || bits.end !== outer.end || der[bits.start] !== 0) return false;
  if (!isDerEcdsaSignature(der.subarray(bits.start + 1, bits.end))) return false;
  // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature AlgorithmIdentifier, … }
  let at = tbs.start;
  const version = derElement(der, at, tbs.end);
  if (version?.tag === 0xa0) at = version.end;
  const serial = derElement(der, at, tbs.end);
  if (serial?.tag !== 0x02) return false;
  const inner = derElement(der, serial.end, tbs.end);
  return inner !== undefined && bytesEqual(der.subarray(serial.end, inner.end), ECDSA_WITH_SHA256);
}

/** ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, each a minimal positive INTEGER. */
function isDerEcdsaSignature(sig: Uint8Array): boolean {
  const seq = derElement(sig, 0, sig.length);
  if (seq?.tag !== 0x30 || seq.end !== sig.length) return false;
  let at = seq.start;
  for (let n = 0; n < 2; n++) {
    const int = derElement(sig, at, seq.end);
    if (int?.tag !== 0x02 || int.end - int.start < 1 || int.end - int.start > 33) return false;
    const first = sig[int.start]!;
    // Negative, or a leading zero that is not needed to keep the number positive.
    if (first & 0x80 || (first === 0 && (int.end - int.start === 1 || !(sig[int.start + 1]! & 0x80)))) return false;
    at = int.end;
  }
  return at === seq.end;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The subject Name of a certificate, DER, as it stands in the certificate (undefined if unreadable). */
export function subjectNameDer(der: Uint8Array): Uint8Array | undefined {
  const outer = derElement(der, 0, der.length);
  const tbs = outer && derElement(der, outer.start, outer.end);
  if (!tbs) return undefined;
  // [0] version, serial, signature, issuer, validity, subject
  let at = tbs.start;
  const first = derElement(der, at, tbs.end);
  if (first?.tag !== 0xa0) return undefined;
  at = first.end;
  for (let field = 0; field < 4; field++) {
    const e = derElement(der, at, tbs.end);
    if (!e) return undefined;
    at = e.end;
  }
  const subject = derElement(der, at, tbs.end);
  return subject?.tag === 0x30 ? der.subarray(subject.at, subject.end) : undefined;
}
