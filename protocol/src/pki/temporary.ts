import { parseTradeHandle } from '../identity.ts';
import { type DerElement, bytesEqual, derElement, isCanonicalEcdsaCertificate } from './der.ts';

/**
 * The temporary certificate (Zone 4) written and read by hand, because it is made and checked on
 * every session open: @peculiar/x509 takes milliseconds of CPU to encode one (and parses what it
 * just made) and milliseconds to parse one, where the signature costs a tenth of a millisecond.
 *
 * One fixed profile, byte for byte what `X509CertificateGenerator` makes for the extensions in
 * issue.ts `extensionsFor` (the tests compare the two, and openssl reads ours):
 *
 *   TBSCertificate: v3, a 16-byte positive serial, ecdsa-with-SHA256, the issuer's subject Name
 *   copied byte for byte, validity (UTCTime through 2049, GeneralizedTime after, as RFC 5280
 *   wants), an empty subject, the P-256 SPKI, and extensions in this order: keyUsage critical
 *   digitalSignature; subjectKeyIdentifier SHA-1 of the key; authorityKeyIdentifier the issuer's
 *   key id; certificatePolicies the temporary kind; subjectAltName critical, one URI
 *   `urn:obol:tx:<trade handle>`.
 *
 * The reader does not interpret: it takes the variable fields out of a certificate, writes them
 * back in this profile and accepts only a byte-identical result. So what it accepts says exactly
 * what the profile says; anything else (another kind, another extension, another encoding of
 * the same thing) is left to the general parser and its checks.
 */

/** The variable fields of a temporary certificate's to-be-signed part. */
export interface TemporaryFields {
  serial: Uint8Array;
  /** The issuer's subject Name, DER. */
  issuerName: Uint8Array;
  /** Milliseconds since the epoch, whole seconds. */
  notBefore: number;
  notAfter: number;
  /** SubjectPublicKeyInfo DER of a P-256 key, uncompressed point. */
  spki: Uint8Array;
  subjectKeyId: Uint8Array;
  authorityKeyId: Uint8Array;
  handle: string;
}

export interface TemporaryCertificate extends TemporaryFields {
  der: Uint8Array<ArrayBuffer>;
  tbs: Uint8Array<ArrayBuffer>;
  /** The signature as WebCrypto takes it (r ‖ s, 32 bytes each). */
  signature: Uint8Array<ArrayBuffer>;
}

/** SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } up to the 65-byte uncompressed point. */
const P256_SPKI_PREFIX = hex('3059301306072a8648ce3d020106082a8648ce3d030107034200');
const ECDSA_WITH_SHA256 = hex('300a06082a8648ce3d040302');
const VERSION_3 = hex('a003020102');
const EMPTY_NAME = hex('3000');
/** keyUsage, critical, digitalSignature only. */
const KEY_USAGE_DIGITAL_SIGNATURE = hex('300e0603551d0f0101ff040403020780');
const OID_SKI = hex('0603551d0e');
const OID_AKI = hex('0603551d23');
const OID_POLICIES = hex('0603551d20');
const OID_SAN = hex('0603551d11');
const CRITICAL = hex('0101ff');
const TX_URN_PREFIX = 'urn:obol:tx:';

/** Whether `spki` is a P-256 key in the one form the profile writes (as WebCrypto exports it). */
export function isPlainP256Spki(spki: Uint8Array): boolean {
  return spki.length === P256_SPKI_PREFIX.length + 65 && bytesEqual(spki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX) && spki[P256_SPKI_PREFIX.length] === 0x04;
}

/** The EC point of a P-256 SPKI: what its subject key identifier is the SHA-1 of (RFC 5280 4.2.1.2 (1)). */
export function spkiPoint(spki: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(spki.subarray(P256_SPKI_PREFIX.length));
}

/** The to-be-signed part, in the profile. `policyOid` is the temporary kind's policy. */
export function encodeTemporaryTbs(f: TemporaryFields, policyOid: string): Uint8Array<ArrayBuffer> {
  const uri = ascii(`${TX_URN_PREFIX}${f.handle}`);
  const extensions = tlv(
    0x30,
    KEY_USAGE_DIGITAL_SIGNATURE,
    tlv(0x30, OID_SKI, tlv(0x04, tlv(0x04, f.subjectKeyId))),
    tlv(0x30, OID_AKI, tlv(0x04, tlv(0x30, tlv(0x80, f.authorityKeyId)))),
    tlv(0x30, OID_POLICIES, tlv(0x04, tlv(0x30, tlv(0x30, tlv(0x06, oid(policyOid)))))),
    tlv(0x30, OID_SAN, CRITICAL, tlv(0x04, tlv(0x30, tlv(0x86, uri)))),
  );
  return tlv(
    0x30,
    VERSION_3,
    tlv(0x02, f.serial),
    ECDSA_WITH_SHA256,
    f.issuerName,
    tlv(0x30, time(f.notBefore), time(f.notAfter)),
    EMPTY_NAME,
    f.spki,
    tlv(0xa3, extensions),
  );
}

/** The signed certificate: TBS, algorithm, and the WebCrypto signature (r ‖ s) as a DER ECDSA-Sig-Value. */
export function encodeCertificate(tbs: Uint8Array, signature: Uint8Array): Uint8Array<ArrayBuffer> {
  const half = signature.length / 2;
  const sigValue = tlv(0x30, tlv(0x02, derInteger(signature.subarray(0, half))), tlv(0x02, derInteger(signature.subarray(half))));
  return tlv(0x30, tbs, ECDSA_WITH_SHA256, tlv(0x03, new Uint8Array([0]), sigValue));
}

/**
 * A temporary certificate in exactly the profile, or undefined for anything else (which may still
 * be a certificate: the general parser decides). Checks no signature and no date.
 */
export function readTemporaryCert(der: Uint8Array<ArrayBuffer>, policyOid: string): TemporaryCertificate | undefined {
  if (!isCanonicalEcdsaCertificate(der)) return undefined;
  const outer = derElement(der, 0, der.length)!;
  const tbsEl = derElement(der, outer.start, outer.end)!;
  const tbs = der.subarray(tbsEl.at, tbsEl.end);
  const alg = derElement(der, tbsEl.end, outer.end)!;
  const bits = derElement(der, alg.end, outer.end)!;
  const signature = p1363(der.subarray(bits.start + 1, bits.end));
  if (!signature) return undefined;
  // TBSCertificate fields in order.
  const fields: DerElement[] = [];
  for (let at = tbsEl.start; at < tbsEl.end; ) {
    const e = derElement(der, at, tbsEl.end);
    if (!e) return undefined;
    fields.push(e);
    at = e.end;
  }
  if (fields.length !== 8) return undefined;
  const [, serial, , issuer, validity, , spki, exts] = fields as [DerElement, DerElement, DerElement, DerElement, DerElement, DerElement, DerElement, DerElement];
  if (serial.tag !== 0x02 || issuer.tag !== 0x30 || validity.tag !== 0x30 || spki.tag !== 0x30 || exts.tag !== 0xa3) return undefined;
  const nb = derElement(der, validity.start, validity.end);
  const na = nb && derElement(der, nb.end, validity.end);
  const notBefore = nb && readTime(der, nb);
  const notAfter = na && readTime(der, na);
  if (notBefore === undefined || notAfter === undefined) return undefined;
  // Extensions: SEQUENCE OF SEQUENCE { OID, [critical], OCTET STRING }; the key ids and the URI.
  const list = derElement(der, exts.start, exts.end);
  if (!list) return undefined;
  let subjectKeyId: Uint8Array | undefined;
  let authorityKeyId: Uint8Array | undefined;
  let uri: Uint8Array | undefined;
  for (let at = list.start; at < list.end; ) {
    const ext = derElement(der, at, list.end);
    const id = ext && derElement(der, ext.start, ext.end);
    if (!ext || !id) return undefined;
    let value = derElement(der, id.end, ext.end);
    if (value?.tag === 0x01) value = derElement(der, value.end, ext.end);
    if (!value) return undefined;
    const oidBytes = der.subarray(id.at, id.end);
    const inner = derElement(der, value.start, value.end);
    if (bytesEqual(oidBytes, OID_SKI)) subjectKeyId = inner && der.subarray(inner.start, inner.end);
    else if (bytesEqual(oidBytes, OID_AKI)) {
      const keyId = inner && derElement(der, inner.start, inner.end);
      authorityKeyId = keyId && der.subarray(keyId.start, keyId.end);
    } else if (bytesEqual(oidBytes, OID_SAN)) {
      const name = inner && derElement(der, inner.start, inner.end);
      uri = name && der.subarray(name.start, name.end);
    }
    at = ext.end;
  }
  if (!subjectKeyId || !authorityKeyId || !uri) return undefined;
  const text = String.fromCharCode(...uri);
  if (!text.startsWith(TX_URN_PREFIX)) return undefined;
  let handle: string;
  try {
    handle = parseTradeHandle(text.slice(TX_URN_PREFIX.length));
  } catch {
    return undefined;
  }
  const read: TemporaryFields = {
    serial: der.subarray(serial.start, serial.end),
    issuerName: der.subarray(issuer.at, issuer.end),
    notBefore,
    notAfter,
    spki: der.subarray(spki.at, spki.end),
    subjectKeyId,
    authorityKeyId,
    handle,
  };
  // The serial as the profile makes it (16 bytes, positive, minimal) and the key as it writes it.
  if (read.serial.length !== 16 || read.serial[0]! & 0x80 || read.serial[0] === 0 || !isPlainP256Spki(read.spki)) return undefined;
  if (!bytesEqual(encodeTemporaryTbs(read, policyOid), tbs)) return undefined;
  return { ...read, der, tbs: new Uint8Array(tbs), signature };
}

// ── DER writing ───────────────────────────────────────────────────────────────────────────────

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = length < 0x80 ? [tag, length] : length < 0x100 ? [tag, 0x81, length] : [tag, 0x82, length >> 8, length & 0xff];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An unsigned big-endian number as the content of a minimal positive DER INTEGER. */
function derInteger(n: Uint8Array): Uint8Array {
  let i = 0;
  while (i < n.length - 1 && n[i] === 0) i++;
  const trimmed = n.subarray(i);
  if (!(trimmed[0]! & 0x80)) return trimmed;
  const padded = new Uint8Array(trimmed.length + 1);
  padded.set(trimmed, 1);
  return padded;
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), always `Z`, whole seconds. */
function time(ms: number): Uint8Array {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, '0');
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  return year >= 1950 && year <= 2049 ? tlv(0x17, ascii(`${two(year % 100)}${rest}`)) : tlv(0x18, ascii(`${String(year).padStart(4, '0')}${rest}`));
}

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const bytes = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return new Uint8Array(out);
}

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0x7f;
  return out;
}

function hex(text: string): Uint8Array {
  return new Uint8Array(text.match(/../g)!.map((b) => Number.parseInt(b, 16)));
}

// ── DER reading ───────────────────────────────────────────────────────────────────────────────

/** UTCTime or GeneralizedTime `…Z` with seconds; undefined for any other form. */
function readTime(der: Uint8Array, e: { tag: number; start: number; end: number }): number | undefined {
  const text = String.fromCharCode(...der.subarray(e.start, e.end));
  const m = e.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : e.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!m) return undefined;
  const y = Number(m[1]);
  const year = e.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  // Date.UTC rolls 31 February over into March: the re-encoding comparison refuses that.
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * A DER ECDSA-Sig-Value (already checked canonical) as r ‖ s, 32 bytes each; undefined when r or s
 * does not fit 32 bytes (a 33rd byte is only ever the sign byte 00), which no P-256 signature does.
 */
function p1363(sig: Uint8Array): Uint8Array<ArrayBuffer> | undefined {
  const seq = derElement(sig, 0, sig.length)!;
  const out = new Uint8Array(64);
  let at = seq.start;
  for (let k = 0; k < 2; k++) {
    const int = derElement(sig, at, seq.end)!;
    let value = sig.subarray(int.start, int.end);
    if (value.length === 33 && value[0] === 0) value = value.subarray(1);
    if (value.length > 32) return undefined;
    out.set(value, k * 32 + 32 - value.length);
    at = int.end;
  }
  return out;
}
