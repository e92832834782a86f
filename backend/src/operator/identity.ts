import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type KeyHandle, KEY_ALG, keyHandle } from '@obol/protocol/keys';
import {
  type Cert,
  certToPem,
  createRootCa,
  describeCert,
  issueOperatorCert,
  parseCert,
} from '@obol/protocol/pki';
import { certToBase64 } from '@obol/protocol/pki';

/**
 * Who an operator is: its signing key, its certificate (signed by the interbank root, PKI zone 1)
 * and the root it trusts. On disk a key folder holds `<name>.key.json` (PKCS#8 as JWK, mode 600)
 * and `<name>.cert.pem`; in memory the private key is re-imported non-extractable.
 */
export interface OperatorIdentity {
  operatorId: string;
  key: KeyHandle;
  cert: Cert;
  certB64: string;
  root: Cert;
  rootB64: string;
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

export async function createOperatorIdentity(root: RootAuthority, operatorId: string, now: number): Promise<{ identity: OperatorIdentity; keys: CryptoKeyPair }> {
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await issueOperatorCert({
    operatorId,
    publicKey: keys.publicKey,
    issuer: { cert: root.cert, privateKey: root.keys.privateKey },
    notBefore: now - 86_400_000,
    notAfter: now + 5 * YEAR,
  });
  return { identity: await identityOf(operatorId, keys, cert, root.cert), keys };
}

async function identityOf(operatorId: string, keys: CryptoKeyPair, cert: Cert, root: Cert): Promise<OperatorIdentity> {
  return { operatorId, key: await keyHandle(keys), cert, certB64: certToBase64(cert), root, rootB64: certToBase64(root) };
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

/** Load an operator's identity from its key folder (`operator.key.json`, `operator.cert.pem`, `root.cert.pem`). */
export async function loadOperatorIdentity(dir: string): Promise<OperatorIdentity> {
  const { keys, cert } = await loadKeyPair(dir, 'operator');
  const root = await loadRootCert(dir);
  return identityOf(describeCert(cert).subjectId, keys, cert, root);
}

/** Write an operator's key folder: its key and certificate, and the root certificate it trusts. */
export async function saveOperatorIdentity(dir: string, keys: CryptoKeyPair, identity: OperatorIdentity): Promise<void> {
  await saveKeyPair(dir, 'operator', keys, identity.cert);
  await writeFile(join(dir, 'root.cert.pem'), certToPem(identity.root));
}
