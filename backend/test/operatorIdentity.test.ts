import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf } from '@obol/protocol/keys';
import { certToBase64, describeCert, operatorMessageKey } from '@obol/protocol/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorIdentity, createRoot, loadOperatorIdentity, type RootAuthority, saveKeyPair, saveOperatorIdentity } from '../src/operator/identity.ts';

/**
 * An operator's key folder: the issuing (CA) key and the message-signing key each with its
 * certificate, written as PEM files that openssl reads one by one and concatenated.
 */
const hasOpenssl = !spawnSync('openssl', ['version']).error;
const openssl = (args: string[]) => {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

let dir: string;
let root: RootAuthority;
const now = Date.now();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'obol-identity-'));
  root = await createRoot('Obol Test Root', now);
  await saveKeyPair(join(dir, 'root'), 'root', root.keys, root.cert);
  const { identity, keys } = await createOperatorIdentity(root, 'op-sek', now);
  await saveOperatorIdentity(join(dir, 'op-sek'), keys, identity);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('operator key folder', () => {
  it('holds an issuing key and a separate message-signing key certified by it; messages use the signing key', async () => {
    const keyDir = join(dir, 'op-sek');
    for (const f of ['operator.key.json', 'operator.cert.pem', 'signing.key.json', 'signing.cert.pem', 'root.cert.pem']) {
      expect([f, existsSync(join(keyDir, f))]).toEqual([f, true]);
    }
    const id = await loadOperatorIdentity(keyDir, now);
    expect(describeCert(id.signingCert)).toMatchObject({ kind: 'signing', subjectId: 'op-sek' });
    expect(id.issuer.cert).toBe(id.cert);
    // The signer of every protocol message is the signing key, never the CA key.
    const signing = await operatorMessageKey(id.signingCert, id.cert, now);
    expect(id.key.kid).toBe(signing.kid);
    expect(id.key.kid).not.toBe(await keyIdOf(describeCert(id.cert).publicKeySpki));
    expect(id.key.privateKey.extractable).toBe(false);
    expect(id.issuer.privateKey.extractable).toBe(false);
    // Loading again gives the same keys: persistent, not re-made.
    expect((await loadOperatorIdentity(keyDir, now)).signingCertB64).toBe(id.signingCertB64);
  });

  it('a folder from before the split (no signing key) gets one at load, saved beside the issuing key', async () => {
    const keyDir = join(dir, 'old');
    const { identity, keys } = await createOperatorIdentity(root, 'op-old', now);
    await saveOperatorIdentity(keyDir, keys, identity);
    await rm(join(keyDir, 'signing.key.json'));
    await rm(join(keyDir, 'signing.cert.pem'));
    const id = await loadOperatorIdentity(keyDir, now);
    expect(existsSync(join(keyDir, 'signing.key.json'))).toBe(true);
    expect((await operatorMessageKey(id.signingCert, id.cert, now)).kid).toBe(id.key.kid);
    expect(certToBase64(id.cert)).toBe(identity.certB64);
  });

  it.skipIf(!hasOpenssl)('openssl reads each PEM and their concatenation, verifies the chain, and sees each key’s usage', () => {
    const keyDir = join(dir, 'op-sek');
    const files = ['root.cert.pem', 'operator.cert.pem', 'signing.cert.pem'].map((f) => join(keyDir, f));
    for (const f of files) expect(readFileSync(f, 'utf8').endsWith('-----END CERTIFICATE-----\n')).toBe(true);
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, files.map((f) => readFileSync(f, 'utf8')).join('')); // cat root operator signing > bundle
    const p7 = spawnSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', bundle], { encoding: 'utf8' });
    expect(p7.status).toBe(0);
    const printed = spawnSync('openssl', ['pkcs7', '-print_certs', '-noout'], { encoding: 'utf8', input: p7.stdout });
    expect(printed.stdout.match(/^subject=/gm)?.length).toBe(3);
    const chain = join(dir, 'chain.pem');
    writeFileSync(chain, [files[1], files[0]].map((f) => readFileSync(f as string, 'utf8')).join(''));
    const v = openssl(['verify', '-x509_strict', '-CAfile', files[0] as string, '-untrusted', chain, files[2] as string]);
    expect(v.out).toMatch(/signing\.cert\.pem: OK/);
    const ca = openssl(['x509', '-in', files[1] as string, '-noout', '-text']).out;
    expect(ca).toMatch(/Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign\n/);
    expect(ca).toMatch(/CA:TRUE, pathlen:0/);
    const leaf = openssl(['x509', '-in', files[2] as string, '-noout', '-text']).out;
    expect(leaf).toMatch(/Key Usage: critical\s*\n\s*Digital Signature\n/);
    expect(leaf).not.toMatch(/Basic Constraints/);
    expect(leaf).toMatch(/Subject Key Identifier/);
    expect(leaf).toMatch(/Authority Key Identifier/);
  });
});
