import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { certToBase64 } from '@obol/protocol/pki';
import { signMessage } from '@obol/protocol/signed';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { randomId } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Arbiter, createArbiterKeyDir } from '../src/arbiter/arbiter.ts';
import { WebhookSink } from '../src/billing/index.ts';
import { downloadsCatalogue } from '../src/demo/catalogues.ts';
import { postJson, undiciHttp } from '../src/http/client.ts';
import { SESSION_K1_COLUMN } from '../src/merchant/merchantAgent.ts';
import { K2_COLUMN } from '../src/merchant/products.ts';
import { ACQ_K1_COLUMN } from '../src/operator/acquirer.ts';
import { createRoot } from '../src/operator/identity.ts';
import { type Db, openDb } from '../src/store/db.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { TEST_START, type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * Issue 11 item 6: every log line of a simulated run — two operators, two shops (with their
 * merchant modules), purchases across operators and within one, a dispute, and error paths (an
 * unreachable merchant, wrong signatures, wrong tokens) — is scanned for what must never be
 * logged: private keys, K1 and K2, bearer and admin tokens, logon tokens, and a customer id on the
 * same line as a pseudonym or trade handle (which would link a shopper to her purchases).
 */
const SHOP_ADMIN = 'shop-admin-token-news-0123456789';
const FILES_ADMIN = 'shop-admin-token-files-0123456789';
const WEBHOOK_SECRET = 'webhook-hmac-secret-0123456789abcdef';

describe('no secrets in the logs of a simulated run (PGlite)', () => {
  let t: TwoOperators;
  let files: Shop;
  let filesDb: Db;
  let arbiterDir: string;
  let arbiter: Arbiter;
  const filesLog: string[] = [];
  const customerIds: string[] = [];
  const logonTokens: string[] = [];

  beforeAll(async () => {
    const root = await createRoot('Obol Interbank Root', TEST_START);
    arbiterDir = await mkdtemp(join(tmpdir(), 'obol-arbiter-'));
    const { publicKey } = await createArbiterKeyDir(arbiterDir, root.cert);
    t = await twoOperators('PGlite', {
      root,
      arbiters: { nbcp: publicKey },
      captureLogs: true,
      shopAdminToken: SHOP_ADMIN,
      // A billing webhook nobody listens at: its deliveries fail (an error path) and its HMAC secret must not show.
      eurSinks: [new WebhookSink({ url: 'http://127.0.0.1:9/billing', secret: WEBHOOK_SECRET, clock: systemClock })],
    });
    arbiter = await Arbiter.fromKeyDir(arbiterDir, { operators: [t.eur.url, t.sek.url], clock: t.clock });
    filesDb = await openDb();
    // The second shop sells files at the SEK operator: a purchase within one operator.
    files = await startShop({
      merchantId: 'files.example',
      name: 'Obol Downloads',
      operatorUrl: t.sek.url,
      operatorId: 'op-sek',
      currency: 'SEK',
      adminToken: t.world.adminToken,
      shopAdminToken: FILES_ADMIN,
      catalogue: downloadsCatalogue('SEK'),
      clock: t.clock,
      db: filesDb,
      sweepIntervalMs: 0,
      logStream: { write: (line) => void filesLog.push(line) },
    });
  }, 120_000);
  afterAll(async () => {
    await files?.close();
    await filesDb?.close();
    await t?.close();
    if (arbiterDir) await rm(arbiterDir, { recursive: true, force: true });
  });

  async function shopper(at: 'sek' | 'eur'): Promise<{ agent: CustomerAgent; store: MemoryWalletStore }> {
    const store = new MemoryWalletStore();
    const agent = new CustomerAgent({
      store,
      http: undiciHttp,
      clock: t.clock,
      depositPolicy: { minimum: at === 'sek' ? 'SEK:2.00' : 'EUR:0.50', timeoutSec: 900 },
      trustedRoots: [certToBase64(t.world.root.cert)],
    });
    const op = at === 'sek' ? t.sek : t.eur;
    const { customerId } = await agent.register(op.url);
    await agent.login();
    customerIds.push(customerId);
    logonTokens.push((await store.getLogin())!.token);
    await t.admin(op, OperatorPaths.adminFund, { customerId, amount: at === 'sek' ? 'SEK:100.00' : 'EUR:10.00' });
    // A balance read carries the logon token as a bearer header: it must not be logged.
    expect(await agent.balance()).toBeDefined();
    return { agent, store };
  }
  const article = (productId: string) => ({ merchantUrl: t.shop.moduleUrl, productId, price: 'EUR:0.03', origin: t.shop.url });

  it('runs purchases, a dispute and error paths, and no log line holds a secret or links a customer to a pseudonym', async () => {
    const sek = await shopper('sek');
    const eur = await shopper('eur');
    // Across operators (SEK shopper, EUR shop), within one (EUR shopper, EUR shop; SEK shopper, SEK shop).
    const bought = await sek.agent.buy(article('two-banks'));
    await sek.agent.buy(article('fair-exchange'));
    await eur.agent.buy(article('two-banks'));
    const [fileProduct] = await files.agent.products();
    const file = await sek.agent.buy({ merchantUrl: files.moduleUrl, productId: fileProduct!.productId, price: fileProduct!.price, origin: files.url });
    expect(file.receipt.handle).toBeTruthy();

    // A dispute: the arbiter judges the shopper's evidence and obtains K1 from the trusted party.
    await arbiter.judge(await sek.agent.exportEvidence(bought.receipt.receiptId));
    await arbiter.obtainK1({ transactionId: bought.receipt.handle, merchantId: 'news.example', merchantOperatorId: 'op-eur', caseRef: 'log-scan' });

    // Error paths. An unreachable merchant: its operator cannot deliver the information message.
    await t.eur.ctx.db.query("UPDATE merchants SET url = 'http://127.0.0.1:9/obol' WHERE id = 'news.example'");
    const stranded = await shopper('sek');
    await expect(stranded.agent.buy(article('pseudonyms'))).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    await t.eur.ctx.db.query('UPDATE merchants SET url = $1 WHERE id = $2', [t.shop.moduleUrl, 'news.example']);
    // Wrong signatures: a merchant record and an arbiter request signed by keys nobody knows; an order
    // signed by a stranger for a real session.
    const stranger = await keyHandle(await generateSigningKeyPair());
    await expect(
      postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, await signMessage('arbiter.keyRequest', { msgId: randomId(), transactionId: bought.receipt.handle, merchantId: 'news.example', caseRef: 'x', time: t.clock.now() }, stranger.signer)),
    ).rejects.toBeDefined();
    await expect(
      postJson(`${t.eur.url}${OperatorPaths.arbiterKey}`, await signMessage('arbiter.keyRequest', { msgId: randomId(), transactionId: bought.receipt.handle, merchantId: 'news.example', caseRef: 'x', time: t.clock.now() }, stranger.signer)),
    ).rejects.toMatchObject({ name: 'UNKNOWN_KEY' });
    // Wrong and right tokens on the administration of an operator and of a shop, and a wrong logon token.
    await expect(postJson(`${t.eur.url}${OperatorPaths.adminFund}`, { customerId: customerIds[0], amount: 'SEK:1.00' }, { headers: { authorization: 'Bearer wrong-admin-token-0123456789' } })).rejects.toBeDefined();
    await expect(undiciHttp.get(`${t.sek.url}${OperatorPaths.balance}`, { authorization: `Bearer ${'x'.repeat(43)}` })).rejects.toMatchObject({ name: 'UNAUTHORIZED' });
    await undiciHttp.get(`${t.shop.moduleUrl}/sessions/${bought.receipt.handle}`, { authorization: `Bearer ${SHOP_ADMIN}` });
    await expect(undiciHttp.get(`${files.moduleUrl}/sessions/${file.receipt.handle}`, { authorization: 'Bearer wrong-shop-admin-0123456789' })).rejects.toBeDefined();

    // Clearing: sessions closed by both wallets, records reported, the merchant modules' timers run.
    for (const a of [sek.agent, eur.agent]) {
      for (const tx of await a.listTransactions()) if (tx.state === 'open' && tx.transactionId) await a.endTransaction(tx.transactionId);
    }
    t.clock.advance(2 * 3600_000);
    await t.shop.agent.sweep();
    await files.agent.sweep();
    await t.shop.agent.settled();
    await files.agent.settled();
    // A handler that logs a request's headers: the credentials in them are redacted (serverOptions.ts).
    t.eur.app.log.info({ req: { headers: { authorization: `Bearer ${t.world.adminToken}` } } }, 'a request as a careless handler logs it');
    files.app.log.warn({ headers: { authorization: `Bearer ${FILES_ADMIN}` } }, 'headers as a careless handler logs them');
    await t.billingLines('eur'); // one delivery round, the webhook's failing
    await t.billingLines('sek');

    // ── what must never be logged ──
    const needles = new Map<string, string>();
    needles.set(t.world.adminToken, 'the operators’ admin token');
    needles.set(SHOP_ADMIN, 'a shop admin token');
    needles.set(WEBHOOK_SECRET, 'the billing webhook’s HMAC secret');
    needles.set(FILES_ADMIN, 'a shop admin token');
    needles.set('wrong-admin-token-0123456789', 'a (wrong) admin token as sent');
    needles.set('wrong-shop-admin-0123456789', 'a (wrong) shop admin token as sent');
    for (const token of logonTokens) needles.set(token, 'a logon token');
    for (const op of [t.sek, t.eur]) {
      for (const r of await op.ctx.db.query<{ id: string; k1_sealed: string | null }>('SELECT id, k1_sealed FROM acq_transactions')) {
        if (r.k1_sealed) needles.set(await op.ctx.sealKeys.open(r.k1_sealed, { column: ACQ_K1_COLUMN, rowId: r.id }), `K1 of ${r.id}`);
      }
    }
    for (const shop of [t.shop, files]) {
      const db = shop === files ? filesDb : t.shopDb;
      for (const r of await db.query<{ ciphertext_hash: string; k2_sealed: string }>('SELECT ciphertext_hash, k2_sealed FROM merchant_products')) {
        needles.set(await shop.sealKeys.open(r.k2_sealed, { column: K2_COLUMN, rowId: r.ciphertext_hash }), `K2 of a ${shop.agent.merchantId} product`);
      }
      for (const r of await db.query<{ transaction_id: string; k1_sealed: string }>('SELECT transaction_id, k1_sealed FROM merchant_sessions')) {
        needles.set(await shop.sealKeys.open(r.k1_sealed, { column: SESSION_K1_COLUMN, rowId: r.transaction_id }), `K1 of ${r.transaction_id}`);
      }
    }
    expect([...needles.values()].filter((w) => w.startsWith('K1')).length).toBeGreaterThanOrEqual(4);
    const keyPatterns: Array<[RegExp, string]> = [
      [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key'],
      [/\\?"d\\?"\s*:\s*\\?"[A-Za-z0-9_-]{20,}/, 'a JWK private member "d"'],
      [/MIG[HT]AgEAMBMGByqGSM49AgEGCCqGSM49AwEHB|MIG[HT]AgEAMBMGByqGSM49AgEGCCqGSM49AwEH/, 'a PKCS#8 P-256 private key (base64)'],
      [/"authorization":"(?!\[redacted\])/i, 'an authorization header'],
      [/Bearer [A-Za-z0-9_-]{8,}/, 'a bearer token'],
    ];
    // Pseudonyms and trade handles: what the merchant side knows a shopper by.
    const aliases: string[] = [];
    for (const op of [t.sek, t.eur]) {
      for (const r of await op.ctx.db.query<{ pseudonym: string; trade_handle: string | null }>('SELECT pseudonym, trade_handle FROM am_transactions')) {
        aliases.push(r.pseudonym);
        if (r.trade_handle) aliases.push(r.trade_handle);
      }
    }
    expect(aliases.length).toBeGreaterThanOrEqual(4);

    const logs: Array<[string, string[]]> = [
      ['op-sek', t.logLines['op-sek']],
      ['op-eur', t.logLines['op-eur']],
      ['news.example', t.logLines['news.example']],
      ['files.example', filesLog],
    ];
    const scan = (sources: Array<[string, string[]]>): string[] => {
      const found: string[] = [];
      for (const [who, lines] of sources) {
        for (const line of lines) {
          for (const [needle, what] of needles) if (line.includes(needle)) found.push(`${who}: ${what} in ${line}`);
          for (const [re, what] of keyPatterns) if (re.test(line)) found.push(`${who}: ${what} in ${line}`);
          const customer = customerIds.find((c) => line.includes(c));
          const alias = customer ? aliases.find((a) => line.includes(a)) : undefined;
          if (customer && alias) found.push(`${who}: customer ${customer} next to ${alias} in ${line}`);
        }
      }
      return found;
    };
    // The scan itself finds what it looks for (a K1, a customer next to a pseudonym, a bearer header, a JWK).
    const someK1 = [...needles].find(([, w]) => w.startsWith('K1'))![0];
    const probe = [`{"msg":"${someK1}"}`, `{"customerId":"${customerIds[0]}","pseudonym":"${aliases[0]}"}`, '{"h":"Bearer abcdefghijkl"}', '{"d":"AbCdEfGhIjKlMnOpQrStUvWxYz"}'];
    expect(scan([['probe', probe]]).length).toBeGreaterThanOrEqual(4);
    for (const [who, lines] of logs) expect(lines.length, `${who} wrote log lines`).toBeGreaterThan(5);
    const found = scan(logs);
    // The error paths did log (so they were scanned): a failed information message, refused signatures.
    const all = logs.flatMap(([, l]) => l).join('\n');
    expect(all).toMatch(/"level":(40|50)/);
    expect(found).toEqual([]);
  }, 120_000);
});
