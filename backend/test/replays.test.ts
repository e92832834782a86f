import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { newTradeHandle } from '@obol/protocol/identity';
import { generateSigningKeyPair, keyHandle, keyIdOf, keySigner, type KeyHandle } from '@obol/protocol/keys';
import { certToBase64, describeCert, issueTemporaryCert } from '@obol/protocol/pki';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson } from '../src/http/client.ts';
import { freePort } from '../src/world/shop.ts';
import { type TwoOperators, initiateBody as initiateBodyOf, rawCustomer as rawCustomerOf, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * Every message handled twice changes nothing the second time; a changed byte, a wrong key, an
 * unknown key or an expired certificate is refused with its code and changes nothing at all.
 * Messages are built by hand here, as a hostile or broken client would send them.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('replayed and tampered messages on %s', (engine) => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators(engine);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  const rawCustomer = () => rawCustomerOf(t);
  const initiateBody = (sessionId: string, sessionKey: KeyHandle) => initiateBodyOf(t, sessionId, sessionKey);
  const balances = async () => [await t.admin(t.sek, OperatorPaths.adminBalances), await t.admin(t.eur, OperatorPaths.adminBalances)];
  const code = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { name?: string }) => e.name);

  it('a replayed initiation opens one deposit and answers the same; a replayed logon is refused', async () => {
    const c = await rawCustomer();
    const sessionKey = await keyHandle(await generateSigningKeyPair());
    const initiate = await signMessage('wallet.initiate', await initiateBody(c.session.sessionId, sessionKey), c.key.signer);
    const first = (await postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate)) as { body: { transactionId: string } };
    const after = await balances();
    const second = (await postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate)) as { body: { transactionId: string } };
    expect(second).toEqual(first);
    expect(await balances()).toEqual(after);
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.login}`, c.login))).toBe('UNAUTHORIZED');
  });

  it('one changed byte, another key or an unknown key: refused with its code, nothing reserved', async () => {
    const c = await rawCustomer();
    const sessionKey = await keyHandle(await generateSigningKeyPair());
    const body = await initiateBody(c.session.sessionId, sessionKey);
    const signed = await signMessage('wallet.initiate', body, c.key.signer);
    const before = await balances();

    const changed = { ...signed, body: { ...signed.body, deposit: 'SEK:3.00' } };
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, changed))).toBe('BAD_SIGNATURE');
    const other = await keyHandle(await generateSigningKeyPair());
    const wrongKey = await signMessage('wallet.initiate', { ...body, msgId: randomId() }, { kid: c.key.kid, sign: other.signer.sign });
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, wrongKey))).toBe('BAD_SIGNATURE');
    const unknown = await signMessage('wallet.initiate', { ...body, msgId: randomId() }, other.signer);
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, unknown))).toBe('UNKNOWN_KEY');
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, { ...signed, type: 'wallet.login' }))).toBe('WRONG_MESSAGE_TYPE');
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, { hello: 'world' }))).toBe('MALFORMED');
    const badCurrency = await signMessage('wallet.initiate', { ...body, msgId: randomId(), deposit: 'XXX:2.00' } as never, c.key.signer);
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, badCurrency))).toBe('UNKNOWN_CURRENCY');
    expect(await balances()).toEqual(before);

    // The untouched message still goes through afterwards: nothing was poisoned by the forgeries.
    await expect(postJson(`${t.sek.url}${OperatorPaths.initiate}`, signed)).resolves.toMatchObject({ type: 'am.ack' });
  });

  it('the acquirer refuses an expired temporary certificate and answers a replayed voucher once', async () => {
    const sek = t.sek.ctx.identity;
    const sessionKey = await keyHandle(await generateSigningKeyPair());
    const now = t.clock.now();
    const voucher = async (transactionId: string, notAfter: number) =>
      signMessage(
        'am.initiate',
        {
          msgId: randomId(),
          transactionId,
          customerOperatorId: 'op-sek',
          pseudonym: randomId(16),
          merchantId: 'news.example',
          depositCustomer: 'SEK:2.00',
          depositMerchant: 'EUR:0.17',
          rate: '0.0874',
          tempCert: certToBase64(
            await issueTemporaryCert({
              publicKey: sessionKey.publicKeySpki,
              handle: transactionId,
              issuer: sek.issuer,
              notBefore: now - 3_600_000,
              notAfter,
            }),
          ),
          k1: randomId(32),
          timeoutSec: 600,
          expiresAt: now + 600_000,
          time: now,
        },
        sek.key.signer,
      );
    const before = await balances();
    const expired = await voucher(newTradeHandle(), now - 1000);
    expect(await code(postJson(`${t.eur.url}${OperatorPaths.peerInitiate}`, expired))).toBe('CERT_EXPIRED');
    expect(await balances()).toEqual(before);

    const good = await voucher(newTradeHandle(), now + 600_000);
    const ack1 = await postJson(`${t.eur.url}${OperatorPaths.peerInitiate}`, good);
    const once = await t.admin(t.eur, OperatorPaths.adminBalances);
    const ack2 = await postJson(`${t.eur.url}${OperatorPaths.peerInitiate}`, good);
    expect(ack2).toEqual(ack1);
    expect(await t.admin(t.eur, OperatorPaths.adminBalances)).toEqual(once);
    // A voucher signed by someone who is not an operator is refused outright.
    const forged = await signMessage('am.initiate', { ...good.body, msgId: randomId(), transactionId: newTradeHandle() }, t.shop.key.signer);
    expect(await code(postJson(`${t.eur.url}${OperatorPaths.peerInitiate}`, forged))).toBe('UNKNOWN_KEY');
    // Nor is one signed with the customer operator's issuing (CA) key: that key signs certificates
    // only; the peer knows the operator's messages by its signing certificate's key.
    const issuingKid = await keyIdOf(describeCert(sek.cert).publicKeySpki);
    expect(issuingKid).not.toBe(sek.key.kid);
    const byIssuingKey = await signMessage('am.initiate', { ...good.body, msgId: randomId(), transactionId: newTradeHandle() }, keySigner(issuingKid, sek.issuer.privateKey));
    expect(await code(postJson(`${t.eur.url}${OperatorPaths.peerInitiate}`, byIssuingKey))).toBe('UNKNOWN_KEY');
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it('a merchant that cannot be reached: the initiation fails with UNAVAILABLE and the deposit goes back', async () => {
    const gone = await keyHandle(await generateSigningKeyPair());
    const closedPort = await freePort();
    await t.admin(t.eur, OperatorPaths.adminMerchants, {
      merchantId: 'gone.example',
      publicKey: gone.publicKeySpki,
      origins: [`http://127.0.0.1:${closedPort}`],
      url: `http://127.0.0.1:${closedPort}/obol`,
    });
    const c = await rawCustomer();
    const sessionKey = await keyHandle(await generateSigningKeyPair());
    const body = { ...(await initiateBody(c.session.sessionId, sessionKey)), merchantId: 'gone.example' };
    const signed = await signMessage('wallet.initiate', body, c.key.signer);
    expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, signed))).toBe('UNAVAILABLE');
    // Reserved, then given back in full (the held account stays, empty).
    const sekBalances = (await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>;
    expect(sekBalances.find((b) => b.account === `customer:${c.customerId}`)?.balance).toBe('SEK:10.00');
    const rows = await t.sek.ctx.db.query<{ state: string }>('SELECT state FROM am_transactions WHERE customer_id = $1', [c.customerId]);
    expect(rows.map((r) => r.state)).toEqual(['failed']);
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it('a replayed order, accept, stop and record count once', async () => {
    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });
    const accept = r.receipt.accept;
    const again = await postJson(`${t.shop.moduleUrl}/accept`, { accept });
    expect(again).toMatchObject({ charged: 'EUR:0.03' });
    expect(await t.shop.agent.session(r.receipt.handle)).toMatchObject({ spent: 'EUR:0.03', count: 1 });
    await shopper.endTransaction(r.receipt.transactionId);
    await t.shop.agent.settled();
    const status = await shopper.transactionStatus(r.receipt.transactionId);
    expect(status).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.03' });
    const before = await balances();
    await shopper.report(r.receipt.transactionId);
    await t.shop.agent.sweep();
    expect(await balances()).toEqual(before);
  });
});
