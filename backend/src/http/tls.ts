import { readFile, writeFile } from 'node:fs/promises';
import { ObolError } from '@obol/protocol/errors';
import { certToPem } from '@obol/protocol/pki';
import { issueTlsServerCert } from '@obol/protocol/pki/tls';
import type { OperatorIdentity } from '../operator/identity.ts';
import { PRIVATE_FILE_MODE } from '../store/privateFiles.ts';

/**
 * TLS for every Obol server (operator, a shop with the merchant module, arbiter): one option,
 * `tls: { cert, key }` naming two PEM files, the certificate chain (server certificate, then the
 * operator's certificate) and the private key, as `obol operator issue-tls-cert` writes them.
 * Without it a server speaks plain HTTP (the demo world, the tests).
 */
export interface TlsFiles {
  /** PEM: the server certificate, then the certificate of the operator that issued it. */
  cert: string;
  /** PEM: the server's private key (PKCS#8). */
  key: string;
}

/** The files' contents, as Node's TLS server takes them. */
export interface TlsPem {
  cert: string;
  key: string;
}

/** Largest PEM file read: a chain of a few certificates is a few KiB. */
const MAX_PEM_BYTES = 64 * 1024;

export async function loadTls(files: TlsFiles): Promise<TlsPem> {
  const read = async (path: string, what: string) => {
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new ObolError('MALFORMED', `TLS ${what} ${path}: ${e.code ?? e.message}`);
    });
    if (text.length > MAX_PEM_BYTES || !text.includes('-----BEGIN ')) throw new ObolError('MALFORMED', `TLS ${what} ${path} is not a PEM file`);
    return text;
  };
  return { cert: await read(files.cert, 'certificate'), key: await read(files.key, 'key') };
}

/** Default lifetime of a TLS server certificate: renewed often, as the web does. */
export const TLS_CERT_DAYS = 90;

/**
 * A new key and a TLS server certificate for `names` (DNS names, IP addresses), issued by the
 * operator: the chain (certificate + operator certificate) and the key, in PEM.
 */
export async function issueTls(identity: OperatorIdentity, names: readonly string[], now: number, days = TLS_CERT_DAYS): Promise<TlsPem> {
  if (!(Number.isInteger(days) && days >= 1 && days <= 825)) throw new ObolError('MALFORMED', 'a TLS certificate lives 1 to 825 days');
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await issueTlsServerCert({
    names,
    publicKey: keys.publicKey,
    issuer: identity.issuer,
    notBefore: now - 60_000,
    notAfter: now + days * 86_400_000,
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: `${pemBlock(certToPem(cert))}${pemBlock(certToPem(identity.cert))}`, key };
}

/** The trust a client needs to reach a server of this operator: its certificate and the root. */
export function operatorChainPem(identity: OperatorIdentity): string {
  return `${pemBlock(certToPem(identity.cert))}${pemBlock(certToPem(identity.root))}`;
}

/** Writes the chain and the key, both readable by the owner only (the key is a secret). */
export async function writeTls(pem: TlsPem, files: TlsFiles): Promise<void> {
  await writeFile(files.key, pem.key, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  await writeFile(files.cert, pem.cert, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
}

/** One PEM block ending in exactly one newline, so blocks concatenate into a valid chain file. */
function pemBlock(pem: string): string {
  return `${pem.replace(/\r\n/g, '\n').trimEnd()}\n`;
}
