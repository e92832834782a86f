import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type KeyHandle, KEY_ALG, keyHandle } from '@obol/protocol/keys';
import { serverCrypto } from '../crypto/nodeCrypto.ts';
import {
  type Cert,
  type CertIssuer,
  certToBase64,
  certToPem,
  createRootCa,
  describeCert,
  issueOperatorCert,
  issueSigningCert,
  parseCert,
} from '@obol/protocol/pki';

/**
 * Who an operator is. Two keys with two jobs: the issuing key (its CA certificate, signed by the
 * interbank root, PKI zone 1) signs certificates only — customers', merchants', temporary ones and
 * the signing certificate; the message-signing key (a leaf certificate issued by the CA key,
 * keyUsage digitalSignature, no CA flag) signs every protocol message. So the key in use on every
 * request cannot mint certificates. On disk a key folder holds `<name>.key.json` (PKCS#8 as JWK,
 * mode 600) and `<name>.cert.pem` for `operator` (issuing) and `signing`; in memory the private
 * keys are re-imported non-extractable.
 */
export interface OperatorIdentity {
  operatorId: string;
  /** The message-signing key: `key.signer` signs exchange tables, acks, clearings, info messages. */
  key: KeyHandle;
  /** Its certificate (issued by `cert`), as peers, merchants and wallets fetch it. */
  signingCert: Cert;
  signingCertB64: string;
  /** The operator's CA certificate (zone 1) and the issuing key: for certificates only. */
  cert: Cert;
  certB64: string;
  issuer: CertIssuer;
  root: Cert;
  rootB64: string;
}

/** The key pairs behind an identity, to save them (extractable only until written). */
export interface OperatorKeys {
  issuing: CryptoKeyPair;
  signing: CryptoKeyPair;
}

export interface RootAuthority {
  cert: Cert;
  keys: CryptoKeyPair;
}

const YEAR = 365 * 86_400_000;

export async function createRoot(name: string, now: number): Promise<RootAuthority> {
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await createRootCa({ name, keys, notBefore: now - 86_400_000, notAfter: now + 10 * YEAR });
  return { cert, keys };
}

export async function createOperatorIdentity(root: RootAuthority, operatorId: string, now: number): Promise<{ identity: OperatorIdentity; keys: OperatorKeys }> {
  const issuing = (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await issueOperatorCert({
    operatorId,
    publicKey: issuing.publicKey,
    issuer: { cert: root.cert, privateKey: root.keys.privateKey },
    notBefore: now - 86_400_000,
    notAfter: now + 5 * YEAR,
  });
  const { keys: signing, cert: signingCert } = await createSigningKey(operatorId, { cert, privateKey: issuing.privateKey }, now);
  return { identity: await identityOf(operatorId, issuing, cert, signing, signingCert, root.cert), keys: { issuing, signing } };
}

/** A new message-signing key for the operator, certified by its issuing key (a year, within the CA's validity). */
async function createSigningKey(operatorId: string, issuer: CertIssuer, now: number): Promise<{ keys: CryptoKeyPair; cert: Cert }> {
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await issueSigningCert({ operatorId, publicKey: keys.publicKey, issuer, notBefore: now - 86_400_000, notAfter: now + YEAR });
  return { keys, cert };
}

async function identityOf(
  operatorId: string,
  issuing: CryptoKeyPair,
  cert: Cert,
  signing: CryptoKeyPair,
  signingCert: Cert,
  root: Cert,
): Promise<OperatorIdentity> {
  return {
    operatorId,
    // The operator signs every message it sends with this key: through the servers' crypto handle.
    key: await keyHandle(signing, serverCrypto),
    signingCert,
    signingCertB64: certToBase64(signingCert),
    cert,
    certB64: certToBase64(cert),
    issuer: { cert, privateKey: issuing.privateKey },
    root,
    rootB64: certToBase64(root),
  };
}

// ── key folder ────────────────────────────────────────────────────────────────────────────────

export async function saveKeyPair(dir: string, name: string, keys: CryptoKeyPair, cert: Cert): Promise<void> {
  await mkdir(dir, { recursive: true });
  const jwk = await crypto.subtle.exportKey('jwk', keys.privateKey);
  await writeFile(join(dir, `${name}.key.json`), JSON.stringify(jwk), { mode: 0o600 });
  await writeFile(join(dir, `${name}.cert.pem`), certToPem(cert));
}

export async function loadKeyPair(dir: string, name: string, extractable = false): Promise<{ keys: CryptoKeyPair; cert: Cert }> {
  const jwk = JSON.parse(await readFile(join(dir, `${name}.key.json`), 'utf8')) as JsonWebKey;
  const privateKey = await crypto.subtle.importKey('jwk', jwk, KEY_ALG, extractable, ['sign']);
  const { d: _d, ...publicJwk } = jwk;
  const publicKey = await crypto.subtle.importKey('jwk', { ...publicJwk, key_ops: ['verify'] }, KEY_ALG, true, ['verify']);
  const cert = parseCert(await readFile(join(dir, `${name}.cert.pem`), 'utf8'));
  return { keys: { privateKey, publicKey }, cert };
}

export async function loadRoot(dir: string): Promise<RootAuthority> {
  const { keys, cert } = await loadKeyPair(dir, 'root', true);
  return { keys, cert };
}

export async function loadRootCert(dir: string): Promise<Cert> {
  return parseCert(await readFile(join(dir, 'root.cert.pem'), 'utf8'));
}

/**
 * Load an operator's identity from its key folder (`operator.*` issuing key and certificate,
 * `signing.*` message key and certificate, `root.cert.pem`). A folder written before operators had
 * a separate signing key, or whose signing certificate has expired, gets a new signing key here,
 * certified by the issuing key and saved beside it.
 */
export async function loadOperatorIdentity(dir: string, now = Date.now()): Promise<OperatorIdentity> {
  const { keys: issuing, cert } = await loadKeyPair(dir, 'operator');
  const root = await loadRootCert(dir);
  const operatorId = describeCert(cert).subjectId;
  let signing: { keys: CryptoKeyPair; cert: Cert } | undefined;
  if (existsSync(join(dir, 'signing.key.json'))) {
    signing = await loadKeyPair(dir, 'signing');
    if (signing.cert.notAfter.getTime() <= now) signing = undefined;
  }
  if (!signing) {
    const fresh = await createSigningKey(operatorId, { cert, privateKey: issuing.privateKey }, now);
    await saveKeyPair(dir, 'signing', fresh.keys, fresh.cert);
    signing = await loadKeyPair(dir, 'signing'); // re-imported non-extractable, like the others
  }
  return identityOf(operatorId, issuing, cert, signing.keys, signing.cert, root);
}

/** Write an operator's key folder: both keys and certificates, and the root certificate it trusts. */
export async function saveOperatorIdentity(dir: string, keys: OperatorKeys, identity: OperatorIdentity): Promise<void> {
  await saveKeyPair(dir, 'operator', keys.issuing, identity.cert);
  await saveKeyPair(dir, 'signing', keys.signing, identity.signingCert);
  await writeFile(join(dir, 'root.cert.pem'), certToPem(identity.root));
}
