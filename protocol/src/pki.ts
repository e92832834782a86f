/**
 * Obol's X.509 PKI (design: "Cryptography and PKI", zones 1–4). Every certificate is ECDSA P-256
 * with SHA-256, and every @peculiar/x509 call gets the injected WebCrypto handle explicitly, so
 * nothing depends on the library's global provider and the same code runs in Node and Chromium.
 *
 *   Zone 1     root (self-signed CA) ─signs→ operator (CA, pathLen 0: certificates only)
 *              operator ─signs→ signing (the operator's message key: every message it sends)
 *   Zones 2–3  operator ─signs→ customer (wallet long-term key) and merchant (id + web origins)
 *   Zone 4     customer's operator ─signs→ temporary (session key + TransactionIdentity only);
 *              the merchant's operator re-issues it for its merchant, and the customer's operator
 *              re-issues the merchant certificate for its wallet (`reissue`).
 *
 * How kinds and identities are encoded, and the wire form (base64url DER in JSON, PEM for
 * files), are described in `pki/cert.ts`.
 */
export {
  ANY_POLICY,
  CERT_KIND_OIDS,
  type Cert,
  type CertDescription,
  type CertKind,
  ISSUER_KIND,
  OBOL_POLICY_ARC,
  certToBase64,
  certToPem,
  certsToPem,
  describeCert,
  parseCert,
  parseCertBundle,
  publicKeyOf,
} from './pki/cert.ts';
export {
  type CertIssuer,
  type SubjectKey,
  type ValidityInput,
  createRootCa,
  generateKeyPair,
  issueCustomerCert,
  issueMerchantCert,
  issueOperatorCert,
  issueSigningCert,
  issueTemporaryCert,
  issueTemporaryCertB64,
  reissue,
  reissueOnce,
  reissueTemporaryB64,
} from './pki/issue.ts';
export { type OperatorMessageKey, type TrustAnchors, type VerifyOptions, operatorMessageKey, verifyChain } from './pki/verify.ts';
