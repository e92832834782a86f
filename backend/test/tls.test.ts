import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterPaths, MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { certToPem, parseCert, verifyChain } from '@obol/protocol/pki';
import { issueTlsServerCert } from '@obol/protocol/pki/tls';
import { Agent, request } from 'undici';
import { Arbiter } from '../src/arbiter/arbiter.ts';
import { type ArbiterServer, startArbiterServer } from '../src/arbiter/server.ts';
import { getJson, trustServerCas } from '../src/http/client.ts';
import { type TlsFiles, issueTls, operatorChainPem, writeTls } from '../src/http/tls.ts';
import { type OperatorIdentity, type OperatorKeys, type RootAuthority, createOperatorIdentity, createRoot, saveOperatorIdentity } from '../src/operator/identity.ts';
import { type OperatorServer, startOperator } from '../src/operator/server.ts';
import { openDb } from '../src/store/db.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { SealKeys } from '../src/store/sealedColumn.ts';

/**
 * TLS for every server, with certificates from the operator's own PKI: a client that trusts the
 * operator's chain (operator certificate + interbank root) connects; one that does not, does not.
 */
const run = promisify(execFile);
const obol = fileURLToPath(new URL('../bin/obol.js', import.meta.url));
const ADMIN = 'admin-token-0123456789';

let dir = '';
let root: RootAuthority;
let identity: OperatorIdentity;
let operatorKeys: OperatorKeys;
let chain = '';
const files = (name: string): TlsFiles => ({ cert: join(dir, `${name}.cert.pem`), key: join(dir, `${name}.key.pem`) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'obol-tls-'));
  const now = systemClock.now();
  root = await createRoot('TLS Root', now);
  ({ identity, keys: operatorKeys } = await createOperatorIdentity(root, 'op-tls', now));
  chain = operatorChainPem(identity);
  for (const name of ['operator', 'shop', 'arbiter']) await writeTls(await issueTls(identity, ['127.0.0.1', 'localhost'], now), files(name));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('a TLS server certificate from the operator', () => {
  it('names the host, is for servers only, is issued by the operator, and its files are the owner’s only', async () => {
    const pems = (await readFile(files('operator').cert, 'utf8')).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(pems).toHaveLength(2); // the server certificate, then the operator's
    const leaf = new X509Certificate(pems[0]!);
    const issuer = new X509Certificate(pems[1]!);
    expect(issuer.fingerprint256).toBe(new X509Certificate(certToPem(identity.cert)).fingerprint256);
    expect(leaf.checkIssued(issuer)).toBe(true);
    expect(leaf.verify(issuer.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // Node lists the extended key usages: serverAuth
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(leaf.checkHost('evil.example')).toBeUndefined();
    for (const f of Object.values(files('operator'))) expect((await stat(f)).mode & 0o777).toBe(0o600);
  });

  it('is no Obol protocol certificate: a message signed under it would be refused', async () => {
    const leaf = parseCert((await readFile(files('operator').cert, 'utf8')).split('-----END CERTIFICATE-----')[0]!.concat('-----END CERTIFICATE-----'));
    await expect(verifyChain(leaf, { intermediates: [identity.cert], trustedRoots: [root.cert] }, { now: systemClock.now() })).rejects.toMatchObject({ name: expect.stringMatching(/^CERT_/) });
  });

  it('refuses names that are not host names or addresses, and issuers that are not operators', async () => {
    const now = systemClock.now();
    const key = (await keyHandle(await generateSigningKeyPair())).publicKeySpki;
    const issuer = identity.issuer;
    for (const names of [[], ['https://x.example'], ['a b'], ['x'.repeat(300)], Array.from({ length: 33 }, (_, i) => `h${i}.example`)]) {
      await expect(issueTlsServerCert({ names, publicKey: key, issuer, notBefore: now, notAfter: now + 1e9 })).rejects.toMatchObject({ name: 'MALFORMED' });
    }
    await expect(
      issueTlsServerCert({ names: ['x.example'], publicKey: key, issuer: { cert: root.cert, privateKey: root.keys.privateKey }, notBefore: now, notAfter: now + 1e9 }),
    ).rejects.toMatchObject({ name: 'CERT_WRONG_KIND' });
    const v6 = await issueTlsServerCert({ names: ['::1'], publicKey: key, issuer, notBefore: now, notAfter: now + 1e9 });
    expect(new X509Certificate(certToPem(v6)).subjectAltName).toBe('IP Address:0:0:0:0:0:0:0:1');
  });
});

describe('servers with TLS on 127.0.0.1', () => {
  let operator: OperatorServer;
  let shop: Shop;
  let arbiter: ArbiterServer;
  beforeAll(async () => {
    operator = await startOperator({
      config: { operatorId: 'op-tls', name: 'TLS', currency: 'EUR', port: 0, keyDir: '', peers: {}, rates: {}, adminToken: ADMIN, tls: files('operator') },
      identity,
      sealKeys: await SealKeys.ephemeral(),
      db: await openDb(),
      timers: false,
    });
  }, 60_000);
  afterAll(async () => {
    await arbiter?.close();
    await shop?.close();
    await operator?.close();
  });

  const get = async (url: string, dispatcher?: Agent) => {
    const res = await request(url, dispatcher ? { dispatcher } : {});
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };

  it('the operator: a client trusting the operator’s chain connects; without it, or trusting another root, it does not', async () => {
    expect(operator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const agent = new Agent({ connect: { ca: chain } });
    expect(await get(`${operator.url}${OperatorPaths.health}`, agent)).toEqual({ status: 200, body: { ok: true, operatorId: 'op-tls' } });
    expect((await get(`${operator.url}${OperatorPaths.info}`, agent)).body).toMatchObject({ url: operator.url });

    // Node's public roots only.
    await expect(get(`${operator.url}${OperatorPaths.health}`, new Agent())).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE|SELF_SIGNED|ISSUER/) });
    // Another PKI's chain.
    const otherRoot = await createRoot('Other Root', systemClock.now());
    const other = (await createOperatorIdentity(otherRoot, 'op-tls', systemClock.now())).identity;
    await expect(get(`${operator.url}${OperatorPaths.health}`, new Agent({ connect: { ca: operatorChainPem(other) } }))).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|SIGNATURE|SELF_SIGNED|ISSUER/),
    });
    // Plain HTTP to the TLS port is not served.
    await expect(get(`${operator.url.replace('https:', 'http:')}${OperatorPaths.health}`)).rejects.toBeTruthy();
    await agent.close();
  });

  it('the peer client (client.ts) reaches a server once given its operator’s chain', async () => {
    // An operator serving TLS trusts its own chain for its peers (same interbank root).
    expect(await getJson(`${operator.url}${OperatorPaths.health}`)).toEqual({ ok: true, operatorId: 'op-tls' });
    // A server under another PKI: unreachable until its chain is given.
    const now = systemClock.now();
    const other = (await createOperatorIdentity(await createRoot('Other Root', now), 'op-other', now)).identity;
    await writeTls(await issueTls(other, ['127.0.0.1'], now), files('other'));
    const elsewhere = await startArbiterServer(new Arbiter({ key: await keyHandle(await generateSigningKeyPair()), root: root.cert, operators: [] }), {
      tls: files('other'),
    });
    try {
      await expect(getJson(`${elsewhere.url}${ArbiterPaths.health}`)).rejects.toMatchObject({ name: 'UNAVAILABLE' });
      trustServerCas([operatorChainPem(other)]);
      expect(await getJson(`${elsewhere.url}${ArbiterPaths.health}`)).toMatchObject({ ok: true });
      // Trusted besides the first chain, not instead of it.
      expect(await getJson(`${operator.url}${OperatorPaths.health}`)).toMatchObject({ ok: true });
    } finally {
      await elsewhere.close();
    }
  });

  it('a shop with the merchant module: registers with the operator over TLS and serves TLS itself', async () => {
    shop = await startShop({
      merchantId: 'tls.example',
      name: 'TLS Shop',
      operatorUrl: operator.url,
      operatorId: 'op-tls',
      currency: 'EUR',
      adminToken: ADMIN,
      clock: systemClock,
      db: await openDb(),
      sweepIntervalMs: 0,
      tls: files('shop'),
      operatorCa: chain,
    });
    expect(shop.moduleUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/obol$/);
    const agent = new Agent({ connect: { ca: chain } });
    expect(await get(`${shop.moduleUrl}${MerchantPaths.merchant}`, agent)).toMatchObject({ status: 200, body: { merchantId: 'tls.example' } });
    await expect(get(`${shop.moduleUrl}${MerchantPaths.merchant}`, new Agent())).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE|SELF_SIGNED|ISSUER/) });
    await agent.close();
  }, 60_000);

  it('the arbiter', async () => {
    arbiter = await startArbiterServer(new Arbiter({ key: await keyHandle(await generateSigningKeyPair()), root: root.cert, operators: [operator.url] }), {
      tls: files('arbiter'),
    });
    expect(arbiter.url).toMatch(/^https:/);
    const agent = new Agent({ connect: { ca: chain } });
    expect((await get(`${arbiter.url}${ArbiterPaths.health}`, agent)).status).toBe(200);
    await expect(get(`${arbiter.url}${ArbiterPaths.health}`, new Agent())).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE|SELF_SIGNED|ISSUER/) });
    await agent.close();
  });
});

describe('obol operator issue-tls-cert', () => {
  it('writes the chain and the key (0600), and the trust file; refuses to overwrite', async () => {
    const keyDir = join(dir, 'op-keys');
    await saveOperatorIdentity(keyDir, operatorKeys, identity);
    const out = { cert: join(dir, 'cli.cert.pem'), key: join(dir, 'cli.key.pem'), ca: join(dir, 'cli.ca.pem') };
    const args = ['operator', 'issue-tls-cert', '--key-dir', keyDir, '--name', 'pay.example', '127.0.0.1', '--cert', out.cert, '--key', out.key, '--ca', out.ca];
    await run('node', [obol, ...args]);
    for (const f of [out.cert, out.key]) expect((await stat(f)).mode & 0o777).toBe(0o600);
    const leaf = new X509Certificate(await readFile(out.cert, 'utf8'));
    expect(leaf.subjectAltName).toBe('DNS:pay.example, IP Address:127.0.0.1');
    expect(leaf.checkIssued(new X509Certificate(certToPem(identity.cert)))).toBe(true);
    expect(await readFile(out.ca, 'utf8')).toBe(chain);
    const again = await run('node', [obol, ...args]).catch((e: { code: number; stderr: string }) => e);
    expect(again).toMatchObject({ code: 1 });
  }, 60_000);
});
