import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { OperatorPaths } from '@obol/protocol/api';
import { newTradeHandle } from '@obol/protocol/identity';
import type { CustomerAgent, TransactionView } from '@obol/protocol/customerAgent';
import { prepareProduct } from '@obol/protocol/delivery';
import type { EvidenceBundle } from '@obol/protocol/evidence';
import type { Http } from '@obol/protocol/http';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { purchasesHash } from '@obol/protocol/purchaseList';
import { type Signed, signMessage } from '@obol/protocol/signed';
import { randomId, utf8 } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Arbiter, createArbiterKeyDir } from '../src/arbiter/arbiter.ts';
import { formatReport } from '../src/arbiter/report.ts';
import { type ArbiterServer, startArbiterServer } from '../src/arbiter/server.ts';
import { postJson } from '../src/http/client.ts';
import { SESSION_K1_COLUMN } from '../src/merchant/merchantAgent.ts';
import { K2_COLUMN } from '../src/merchant/products.ts';
import { createRoot } from '../src/operator/identity.ts';
import { faultyHttp } from './support/faultyHttp.ts';
import { TEST_START, type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * FIG 4, secure delivery of digital goods, across two operators on the embedded store: the shop
 * sells a file and articles encrypted once and signed once; the wallet checks before it accepts
 * and pays only then; lost and cut deliveries are asked for again or given up unpaid; clearing
 * pays no purchase the shopper did not accept; and an arbiter settles disputes from evidence
 * neither side can forge, with K1 from the trusted party.
 */
const run = promisify(execFile);
const obol = fileURLToPath(new URL('../bin/obol.js', import.meta.url));
const SHOP_TOKEN = 'shop-admin-token-for-the-tests';

/** A delivery cut short: the last bytes of the ciphertext never arrived. */
const cut = (b: Record<string, unknown>) => ({ ...b, ciphertext: String(b.ciphertext).slice(0, -40) });

describe('secure delivery of digital goods (FIG 4) and disputes, across two operators (PGlite)', () => {
  let t: TwoOperators;
  let keyDir: string;
  let arbiter: Arbiter;
  let server: ArbiterServer;
  const files: string[] = [];

  beforeAll(async () => {
    // The interbank root first; the arbiter's key folder names it; the operators trust the arbiter's key.
    const root = await createRoot('Obol Interbank Root', TEST_START);
    keyDir = await mkdtemp(join(tmpdir(), 'obol-arbiter-'));
    const { publicKey } = await createArbiterKeyDir(keyDir, root.cert);
    t = await twoOperators('PGlite', { root, arbiters: { nbcp: publicKey }, shopAdminToken: SHOP_TOKEN });
    arbiter = await Arbiter.fromKeyDir(keyDir, { operators: [t.eur.url], clock: t.clock });
    server = await startArbiterServer(arbiter);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await t?.close();
    for (const f of [keyDir, ...files]) if (f) await rm(f, { recursive: true, force: true });
  });

  async function fundedShopper(http?: Http): Promise<{ shopper: CustomerAgent; customerId: string }> {
    const shopper = t.newShopper('SEK:5.00', http);
    const { customerId } = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:50.00' });
    return { shopper, customerId };
  }
  const news = (productId: string, price = 'EUR:0.03') => ({ merchantUrl: t.shop.moduleUrl, productId, price, origin: t.shop.url });
  const balanceOf = async (customerId: string) =>
    ((await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>).find((b) => b.account === `customer:${customerId}`)?.balance;
  /** The merchant's session of a wallet's transaction: the merchant knows it by its trade handle only. */
  const merchantSession = (tx: { handle?: string }) => t.shop.agent.session(tx.handle!);
  async function settle(shopper: CustomerAgent, transactionId: string) {
    await shopper.endTransaction(transactionId);
    await t.shop.agent.settled();
    return shopper.transactionStatus(transactionId);
  }
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }
  async function onlyTransaction(shopper: CustomerAgent): Promise<TransactionView> {
    const [tx] = await shopper.listTransactions();
    return tx!;
  }

  it('an honest purchase of a file added with the CLI: encrypted once, accepted, charged, decrypted', async () => {
    // The file: binary, 200 KiB, with a PNG signature up front.
    const bytes = new Uint8Array(200 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
    bytes.set([137, 80, 78, 71, 13, 10, 26, 10]);
    const dir = await mkdtemp(join(tmpdir(), 'obol-file-'));
    files.push(dir);
    const file = join(dir, 'heron.png');
    await writeFile(file, bytes);
    const shopArgs = ['merchant', 'add-product', '--shop', t.shop.moduleUrl, '--admin-token', SHOP_TOKEN];
    const added = await run('node', [obol, ...shopArgs, '--id', 'heron-photo', '--title', 'A heron at dawn', '--price', 'EUR:0.20', '--description', 'Photograph, 4000×3000', '--file', file]);
    expect(JSON.parse(added.stdout)).toMatchObject({ productId: 'heron-photo', result: 'added', contentType: 'image/png', size: bytes.length });
    // Bad input is a catalogue error and stores nothing; a wrong token is refused.
    const badPrice = await run('node', [obol, ...shopArgs, '--id', 'cheap', '--title', 'x', '--price', 'EUR:0.5', '--text', 'x']).catch((e: { stderr: string; code: number }) => e);
    expect(badPrice).toMatchObject({ code: 1 });
    expect((badPrice as { stderr: string }).stderr).toContain('INVALID_AMOUNT');
    const badToken = await run('node', [obol, 'merchant', 'add-product', '--shop', t.shop.moduleUrl, '--admin-token', 'nope', '--id', 'x', '--title', 'x', '--price', 'EUR:0.10', '--text', 'x']).catch(
      (e: { stderr: string }) => e,
    );
    expect((badToken as { stderr: string }).stderr).toContain('UNAUTHORIZED');
    expect((await t.shop.agent.products()).map((p) => p.productId)).not.toContain('cheap');

    const { shopper, customerId } = await fundedShopper();
    const bought = await shopper.buy(news('heron-photo', 'EUR:0.20'));
    expect(bought.contentType).toBe('image/png');
    expect(Buffer.from(bought.content).equals(Buffer.from(bytes))).toBe(true);
    expect(bought.receipt).toMatchObject({ status: 'delivered', productId: 'heron-photo', title: 'A heron at dawn', price: 'EUR:0.20' });
    expect(await merchantSession(bought.receipt)).toMatchObject({ count: 1, spent: 'EUR:0.20' });
    expect(await settle(shopper, bought.receipt.transactionId)).toMatchObject({ state: 'cleared', outcome: 'agreed', chargedMerchant: 'EUR:0.20' });
    expect(await balanceOf(customerId)).toBe('SEK:47.71'); // EUR 0.20 at 1/0.0874, half-even
    await audits();
  }, 60_000);

  it('an honest purchase of an article: the same exchange, a receipt the shopper can show, and an arbiter that finds for the merchant', async () => {
    const { shopper } = await fundedShopper();
    const bought = await shopper.buy(news('fair-exchange'));
    expect(utf8.decode(bought.content)).toContain('The fair exchange of digital goods');
    expect(bought.receipt).toMatchObject({ status: 'delivered', title: 'The fair exchange of digital goods', price: 'EUR:0.03', merchantId: 'news.example' });
    expect(bought.receipt.key).toBeDefined();
    expect(utf8.decode((await shopper.openReceipt(bought.receipt.receiptId)).content)).toBe(utf8.decode(bought.content));

    const report = await arbiter.judge(await shopper.exportEvidence(bought.receipt.receiptId));
    expect(report).toMatchObject({ verdict: 'for-merchant', k1ReleasedBy: 'op-eur', alterations: [] });
    expect(report.promised).toMatchObject({ productId: 'fair-exchange', price: 'EUR:0.03', title: 'The fair exchange of digital goods' });
    expect(report.delivered).toMatchObject({ matchesPromise: true, contentHash: report.promised?.contentHash });
    expect(report.delivered?.firstBytes).toContain('The fair exchange of digital goods');
    expect(report.signatures.map((s) => [s.part, s.valid])).toEqual([
      ['description', true],
      ['encrypted product', true],
      ['accept', true],
      ['wrapped key', true],
      ['release of K1', true],
    ]);
    const text = formatReport(report);
    expect(text).toContain('Verdict: FOR THE MERCHANT');
    expect(text).toContain('matches the description');
  });

  it('a wrong product is refused before any accept and nothing is charged', async () => {
    const listing = await t.shop.agent.products();
    const other = listing.find((p) => p.productId === 'two-banks')!.signedDescription;
    const net = faultyHttp();
    const { shopper, customerId } = await fundedShopper(net.http);

    // Another product's (genuine, merchant-signed) description in the delivery.
    net.faults.push({ path: '/obol/order', times: 1, answer: (b) => ({ ...b, description: other }) });
    await expect(shopper.buy(news('pseudonyms'))).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    // The encrypted product's signature broken.
    net.faults.push({ path: '/obol/order', times: 1, answer: (b) => ({ ...b, product: { ...(b.product as object), sig: (other as { sig: string }).sig } }) });
    await expect(shopper.buy(news('pseudonyms'))).rejects.toMatchObject({ name: 'BAD_SIGNATURE' });
    // A price the merchant's signed description does not name: refused before anything is sent.
    await expect(shopper.buy(news('pseudonyms', 'EUR:0.01'))).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });

    expect(net.posts('/obol/accept')).toHaveLength(0);
    expect(await shopper.receipts()).toHaveLength(0);
    const tx = await onlyTransaction(shopper);
    expect(await merchantSession(tx)).toMatchObject({ count: 0, spent: 'EUR:0.00' });
    expect(await settle(shopper, tx.transactionId!)).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.00', refundCustomer: 'SEK:5.00' });
    expect(await balanceOf(customerId)).toBe('SEK:50.00');
    await audits();
  });

  it('a delivery cut once and a key answer lost once are asked for again: bought once, charged once', async () => {
    const net = faultyHttp([
      { path: '/obol/order', times: 1, answer: cut },
      { path: '/obol/accept', times: 1, lose: 'answer' },
    ]);
    const { shopper } = await fundedShopper(net.http);
    const bought = await shopper.buy(news('deposits'));
    expect(utf8.decode(bought.content)).toContain('The deposit is the trick');
    const orders = net.posts('/obol/order');
    expect(orders).toHaveLength(2);
    expect(orders[1]).toEqual(orders[0]);
    const accepts = net.posts('/obol/accept') as Array<{ accept: Signed<'wallet.accept'> }>;
    expect(accepts).toHaveLength(2);
    expect(accepts[1]).toEqual(accepts[0]); // the same accept: counted once
    expect(await merchantSession(bought.receipt)).toMatchObject({ count: 1, spent: 'EUR:0.03' });
    expect(await settle(shopper, bought.receipt.transactionId)).toMatchObject({ chargedMerchant: 'EUR:0.03', outcome: 'agreed' });
  });

  it('a delivery cut for good is aborted: no accept, nothing charged', async () => {
    const net = faultyHttp([{ path: '/obol/order', times: 99, answer: cut }]);
    const { shopper, customerId } = await fundedShopper(net.http);
    const aborted = shopper.buy(news('two-banks'));
    await expect(aborted).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    await expect(aborted).rejects.toThrow(/aborted and nothing was paid/);
    expect(net.posts('/obol/order')).toHaveLength(3);
    expect(net.posts('/obol/accept')).toHaveLength(0);
    const tx = await onlyTransaction(shopper);
    expect(await merchantSession(tx)).toMatchObject({ count: 0 });
    expect(await settle(shopper, tx.transactionId!)).toMatchObject({ chargedMerchant: 'EUR:0.00' });
    expect(await balanceOf(customerId)).toBe('SEK:50.00');
  });

  it('a key that never comes: the merchant holds the accept, the evidence says so, and the key is fetched once the network is back', async () => {
    const net = faultyHttp([{ path: '/obol/accept', times: 3, lose: 'answer' }]);
    const { shopper } = await fundedShopper(net.http);
    await expect(shopper.buy(news('why-micropayments'))).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    const tx = await onlyTransaction(shopper);
    const transactionId = tx.transactionId!;
    expect(await merchantSession(tx)).toMatchObject({ count: 1, spent: 'EUR:0.03' }); // charged on the accept
    const [receipt] = await shopper.receipts();
    expect(receipt).toMatchObject({ status: 'awaiting-key', productId: 'why-micropayments' });

    const evidence = await shopper.exportEvidence(receipt!.receiptId);
    expect(evidence.key).toBeNull();
    const report = await arbiter.judge(evidence);
    expect(report.verdict).toBe('key-not-delivered');
    expect(report.summary).toContain('must hand over its signed key');
    expect(report.k1ReleasedBy).toBeNull();

    // The network is back: the very same accept is sent again and its key comes.
    const steps = await shopper.recover();
    expect(steps).toMatchObject([{ transactionId, state: 'open' }]);
    expect(await shopper.receipt(receipt!.receiptId)).toMatchObject({ status: 'delivered' });
    expect(utf8.decode((await shopper.openReceipt(receipt!.receiptId)).content)).toContain('Why micropayments failed');
    expect(new Set((net.posts('/obol/accept') as Array<{ accept: Signed<'wallet.accept'> }>).map((a) => a.accept.body.acceptId)).size).toBe(1);
    expect(await merchantSession(tx)).toMatchObject({ count: 1, spent: 'EUR:0.03' });
  });

  it('at clearing a merchant claim for a purchase without the shopper’s accept is refused; a replayed accept counts once', async () => {
    const net = faultyHttp();
    const { shopper, customerId } = await fundedShopper(net.http);
    const first = await shopper.buy(news('two-banks'));
    const transactionId = first.receipt.transactionId;
    // What the merchant and its operator name it by.
    const handle = first.receipt.handle;
    // A replayed accept: the same answer and key, no second charge.
    const replay = (await postJson(`${t.shop.moduleUrl}/accept`, { accept: first.receipt.accept })) as { key: unknown; charged: string };
    expect(replay).toMatchObject({ charged: 'EUR:0.03', key: first.receipt.key });
    // Purchase 2 is delivered (the merchant has the order) but never accepted: the delivery stays broken.
    net.faults.push({ path: '/obol/order', times: 3, answer: cut });
    await expect(shopper.buy(news('pseudonyms'))).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    const orders = await t.shopDb.query<{ n: number; accept_id: string | null }>('SELECT n, accept_id FROM merchant_orders WHERE transaction_id = $1 ORDER BY n', [
      handle,
    ]);
    expect(orders.map((o) => [o.n, o.accept_id !== null])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(await merchantSession(first.receipt)).toMatchObject({ count: 1, spent: 'EUR:0.03' });

    // The merchant claims both purchases, with the one accept it holds as proof.
    const [{ list_salt }] = (await t.shopDb.query<{ list_salt: string }>('SELECT list_salt FROM merchant_sessions WHERE transaction_id = $1', [handle])) as [
      { list_salt: string },
    ];
    const greedy = await signMessage(
      'merchant.record',
      {
        msgId: randomId(),
        transactionId: handle,
        count: 2,
        total: 'EUR:0.06',
        purchasesHash: await purchasesHash(list_salt, [
          { n: 1, productId: 'two-banks', price: 'EUR:0.03' },
          { n: 2, productId: 'pseudonyms', price: 'EUR:0.03' },
        ]),
        proof: first.receipt.accept,
        time: t.clock.now(),
      },
      t.shop.key.signer,
    );
    await postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, greedy);
    const status = await settle(shopper, transactionId);
    expect(status).toMatchObject({ state: 'cleared', outcome: 'proven', flagged: true, chargedMerchant: 'EUR:0.03' });

    // A transaction whose only purchase was never accepted: the merchant claims it without proof.
    net.faults.push({ path: '/obol/order', times: 3, answer: cut });
    await expect(shopper.buy(news('deposits'))).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    const secondTx = (await shopper.listTransactions()).find((tx) => tx.transactionId !== transactionId)!;
    const second = secondTx.transactionId!;
    const unproven = await signMessage(
      'merchant.record',
      { msgId: randomId(), transactionId: secondTx.handle!, count: 1, total: 'EUR:0.03', purchasesHash: greedy.body.purchasesHash, proof: null, time: t.clock.now() },
      t.shop.key.signer,
    );
    await postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, unproven);
    expect(await settle(shopper, second)).toMatchObject({ state: 'cleared', outcome: 'proven', flagged: true, chargedMerchant: 'EUR:0.00' });
    // 0.03 paid in all: SEK 0.34.
    expect(await balanceOf(customerId)).toBe('SEK:49.66');
    await audits();
  });

  it('a dispute where the merchant delivered something else: the arbiter finds for the shopper, whichever side presents the evidence', async () => {
    const report2026 = 'The 2026 market report. Chapter 1: micropayments grew tenfold.';
    const terms = { productId: 'market-report', title: 'Market report 2026', description: 'The full 2026 market report', price: 'EUR:0.40', contentType: 'text/plain; charset=utf-8' };
    await t.shop.agent.addProduct({ ...terms, content: utf8.encode(report2026) });
    // The merchant turns dishonest: it keeps the description (and its promise) but sells other bytes,
    // encrypted and signed with its own key so that everything the wallet can check before paying holds.
    const swap = await prepareProduct({ ...terms, content: utf8.encode('Lorem ipsum, filler text: not the report at all.') }, t.shop.key.signer);
    await t.shopDb.query(
      `UPDATE merchant_products SET ciphertext_hash = $2, k2_sealed = $3, iv = $4, ciphertext = $5, signed_product = $6::text::jsonb
        WHERE product_id = $1 AND current`,
      [
        'market-report',
        swap.product.body.ciphertextHash,
        // Sealed under the shop's own data key (the merchant holds it), bound to the new version's row.
        await t.shop.sealKeys.seal(swap.k2, { column: K2_COLUMN, rowId: swap.product.body.ciphertextHash }),
        swap.product.body.iv, Buffer.from(swap.ciphertext), JSON.stringify(swap.product)],
    );

    const { shopper } = await fundedShopper();
    const paid = shopper.buy(news('market-report', 'EUR:0.40'));
    await expect(paid).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    await expect(paid).rejects.toThrow(/not what the merchant's signed description promised/);
    const [receipt] = await shopper.receipts();
    expect(receipt).toMatchObject({ status: 'disputable', productId: 'market-report', problem: { name: 'PRODUCT_MISMATCH' } });

    // The shopper's evidence, through the arbiter's HTTP endpoint.
    const evidence = await shopper.exportEvidence(receipt!.receiptId);
    const judged = (await postJson(`${server.url}/v1/judge`, evidence)) as { report: Awaited<ReturnType<Arbiter['judge']>>; text: string };
    expect(judged.report).toMatchObject({ verdict: 'for-shopper', presentedBy: 'shopper', k1ReleasedBy: 'op-eur', alterations: [] });
    expect(judged.report.promised).toMatchObject({ productId: 'market-report', description: 'The full 2026 market report', price: 'EUR:0.40' });
    expect(judged.report.delivered).toMatchObject({ matchesPromise: false });
    expect(judged.report.delivered?.firstBytes).toContain('Lorem ipsum');
    expect(judged.report.signatures.every((s) => s.valid)).toBe(true);
    expect(judged.text).toContain('Verdict: FOR THE SHOPPER');
    expect(judged.text).toContain('does NOT match the description');
    expect(judged.text).toContain('The merchant delivered something else than it described');

    // The merchant's own copy of the evidence says the same: it cannot disown what it signed.
    const own = await t.shop.agent.exportEvidence(receipt!.handle, receipt!.n);
    expect(own.presentedBy).toBe('merchant');
    expect(await arbiter.judge(own)).toMatchObject({ verdict: 'for-shopper', presentedBy: 'merchant' });
  });

  it('a dispute where the shopper forges the description: the arbiter finds the forgery (also from the command line)', async () => {
    const { shopper } = await fundedShopper();
    const bought = await shopper.buy(news('pseudonyms'));
    const honest = await shopper.exportEvidence(bought.receipt.receiptId);

    // 1. The description's words changed: the merchant's signature no longer holds.
    const forged: EvidenceBundle = structuredClone(honest);
    forged.description = { ...forged.description, body: { ...forged.description.body, description: 'A 40-page investigative report', price: 'EUR:0.03' } };
    const r1 = await arbiter.judge(forged);
    expect(r1.verdict).toBe('evidence-altered');
    expect(r1.alterations).toContain("The description was not signed by the merchant: the shopper's copy was altered.");
    expect(r1.signatures.find((s) => s.part === 'description')).toMatchObject({ valid: false });
    expect(r1.k1ReleasedBy).toBeNull();

    // 2. Another product's genuine description swapped in: signed by the merchant, but not what was bought.
    const swapped: EvidenceBundle = structuredClone(honest);
    swapped.description = (await t.shop.agent.products()).find((p) => p.productId === 'fair-exchange')!.signedDescription;
    const r2 = await arbiter.judge(swapped);
    expect(r2.verdict).toBe('evidence-altered');
    expect(r2.alterations.join(' ')).toContain("the shopper's copy swapped in another product's description");

    // 3. The ciphertext replaced: not what the merchant signed nor what the shopper accepted.
    const bytes: EvidenceBundle = structuredClone(honest);
    bytes.ciphertext = `${bytes.ciphertext.slice(0, -4)}AAAA`;
    expect((await arbiter.judge(bytes)).alterations).toContain("The ciphertext is not the one the merchant signed: the shopper's copy was altered.");

    // 4. The merchant alters the shopper's accept in its own copy: named as the merchant's doing.
    const merchantCopy = await t.shop.agent.exportEvidence(bought.receipt.handle, bought.receipt.n);
    // Both sides reveal the same opening of the accept's commitment, and only to the arbiter.
    expect(merchantCopy.opening).toEqual(honest.opening);
    merchantCopy.accept = { ...merchantCopy.accept, body: { ...merchantCopy.accept.body, cumulative: 'EUR:0.30' } };
    const r4 = await arbiter.judge(merchantCopy);
    expect(r4.verdict).toBe('evidence-altered');
    expect(r4.alterations).toContain("The accept was not signed by the shopper's session key: the merchant's copy was altered.");

    // 5. Another product swapped in with an opening rewritten to match it: the accept's commitment
    // (salted with the transaction's list salt) does not open to it.
    const other = (await t.shop.agent.catalogue.list()).find((p) => p.productId === 'fair-exchange')!;
    const reopened: EvidenceBundle = structuredClone(honest);
    reopened.description = other.signedDescription;
    reopened.opening = { ...reopened.opening, productId: other.productId, descriptionHash: other.descriptionHash };
    const r5 = await arbiter.judge(reopened);
    expect(r5.verdict).toBe('evidence-altered');
    expect(r5.alterations.join(' ')).toContain("is not what the shopper's signed accept commits to: the shopper's copy was altered");
    // A wrong salt opens nothing either.
    const salted: EvidenceBundle = structuredClone(honest);
    salted.opening = { ...salted.opening, listSalt: randomId(16) };
    expect((await arbiter.judge(salted)).verdict).toBe('evidence-altered');

    // The command line: `obol arbiter judge --evidence FILE --operator URL --key-dir DIR`.
    const dir = await mkdtemp(join(tmpdir(), 'obol-evidence-'));
    files.push(dir);
    await writeFile(join(dir, 'forged.json'), JSON.stringify(forged));
    const cli = await run('node', [obol, 'arbiter', 'judge', '--evidence', join(dir, 'forged.json'), '--operator', t.eur.url, '--key-dir', keyDir]);
    expect(cli.stdout).toContain('Verdict: THE EVIDENCE WAS ALTERED');
    expect(cli.stdout).toContain("The description was not signed by the merchant: the shopper's copy was altered.");
    expect(cli.stdout).toContain('✗ description');
    await writeFile(join(dir, 'broken.json'), '{"format": "obol.evidence.v1"}');
    const broken = await run('node', [obol, 'arbiter', 'judge', '--evidence', join(dir, 'broken.json'), '--operator', t.eur.url, '--key-dir', keyDir]).catch(
      (e: { stderr: string; code: number }) => e,
    );
    expect(broken).toMatchObject({ code: 1 });
    expect((broken as { stderr: string }).stderr).toContain('MALFORMED');
    // The endpoint answers bad evidence the same way.
    await expect(postJson(`${server.url}/v1/judge`, { hello: 'world' })).rejects.toMatchObject({ name: 'MALFORMED' });
  }, 60_000);

  it('the trusted party releases K1 only to an arbiter it trusts, for the merchant named, on a fresh request, once', async () => {
    const { shopper } = await fundedShopper();
    const bought = await shopper.buy(news('two-banks'));
    // The arbiter asks by the trade handle, the name the evidence (and the merchant's operator) knows.
    const transactionId = bought.receipt.handle;
    const ask = (body: object, signer = arbiter.key.signer) =>
      signMessage('arbiter.keyRequest', { msgId: randomId(), transactionId, merchantId: 'news.example', caseRef: 'test', time: t.clock.now(), ...body }, signer).then((m) =>
        postJson(`${t.eur.url}${OperatorPaths.arbiterKey}`, m),
      );
    const stranger = await keyHandle(await generateSigningKeyPair());
    await expect(ask({}, stranger.signer)).rejects.toMatchObject({ name: 'UNKNOWN_KEY' });
    await expect(ask({ merchantId: 'other.example' })).rejects.toMatchObject({ name: 'CONFLICT' });
    await expect(ask({ time: t.clock.now() - 600_000 })).rejects.toMatchObject({ name: 'UNAUTHORIZED' });
    await expect(ask({ transactionId: newTradeHandle() })).rejects.toMatchObject({ name: 'UNKNOWN_TRANSACTION' });
    const request = await signMessage('arbiter.keyRequest', { msgId: randomId(), transactionId, merchantId: 'news.example', caseRef: 'test', time: t.clock.now() }, arbiter.key.signer);
    const release = (await postJson(`${t.eur.url}${OperatorPaths.arbiterKey}`, request)) as Signed<'acquirer.keyRelease'>;
    // K1 as the trusted party relayed it to the merchant at initiation.
    const [session] = await t.shopDb.query<{ k1_sealed: string }>('SELECT k1_sealed FROM merchant_sessions WHERE transaction_id = $1', [transactionId]);
    const k1 = await t.shop.sealKeys.open(session!.k1_sealed, { column: SESSION_K1_COLUMN, rowId: transactionId });
    expect(release.body).toMatchObject({ transactionId, merchantId: 'news.example', requestMsgId: request.body.msgId, k1 });
    await expect(postJson(`${t.eur.url}${OperatorPaths.arbiterKey}`, request)).rejects.toMatchObject({ name: 'REPLAYED' });
    const logged = await t.eur.ctx.db.query<{ arbiter: string }>('SELECT arbiter FROM arbiter_requests WHERE transaction_id = $1', [transactionId]);
    expect(logged.map((r) => r.arbiter)).toEqual(['nbcp']);
  });
});
