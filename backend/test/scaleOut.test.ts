import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson } from '../src/http/client.ts';
import { type OperatorServer, startOperator } from '../src/operator/server.ts';
import { openDb } from '../src/store/db.ts';
import { type TwoOperators, initiateBody, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * Two processes of one operator on one PostgreSQL: nothing another process needs lives in memory,
 * so a shopper may log on at one and open deposits at both, and the money rules hold across them.
 */
describe('two processes of the SEK operator on one PostgreSQL', () => {
  let t: TwoOperators;
  let second: OperatorServer;
  beforeAll(async () => {
    t = await twoOperators('PostgreSQL');
    const config = { ...t.sek.ctx.config, port: 0, peers: { 'op-eur': t.eur.url } };
    second = await startOperator({
      config,
      identity: t.sek.ctx.identity,
      // One operator, one data key: both processes open the K1 the other sealed.
      sealKeys: t.sek.ctx.sealKeys,
      clock: t.clock,
      timers: false,
      sinks: [],
      db: await openDb({ databaseUrl: t.sekDatabaseUrl! }),
    });
  }, 120_000);
  afterAll(async () => {
    await second?.close();
    await second?.ctx.db.close();
    await t?.close();
    await stopTestPostgres();
  });

  it('50 initiations split across both processes against a balance for 10: exactly 10 succeed', async () => {
    const key = await keyHandle(await generateSigningKeyPair());
    const { customerId } = (await postJson(`${t.sek.url}${OperatorPaths.registerCustomer}`, { publicKey: key.publicKeySpki })) as {
      customerId: string;
    };
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:20.00' });
    const { challenge } = (await postJson(`${second.url}${OperatorPaths.challenge}`, { customerId })) as { challenge: string };
    const login = await signMessage('wallet.login', { msgId: randomId(), customerId, challenge, time: t.clock.now() }, key.signer);
    const { sessionId } = (await postJson(`${second.url}${OperatorPaths.login}`, login)) as { sessionId: string };

    const attempts = await Promise.allSettled(
      Array.from({ length: 50 }, async (_, i) => {
        const sessionKey = await keyHandle(await generateSigningKeyPair());
        const initiate = await signMessage('wallet.initiate', await initiateBody(t, sessionId, sessionKey), key.signer);
        return postJson(`${(i % 2 === 0 ? t.sek : second).url}${OperatorPaths.initiate}`, initiate);
      }),
    );
    const ok = attempts.filter((a) => a.status === 'fulfilled');
    const refused = new Set(attempts.filter((a) => a.status === 'rejected').map((a) => (a as PromiseRejectedResult).reason.name));
    expect(ok).toHaveLength(10);
    expect(refused).toEqual(new Set(['INSUFFICIENT_FUNDS']));
    const ids = new Set(ok.map((a) => ((a as PromiseFulfilledResult<{ body: { transactionId: string } }>).value).body.transactionId));
    expect(ids.size).toBe(10); // transaction identities from the shared database, never the same twice
    // All of it reserved for the ten deposits (pending transfers), none of it spent yet.
    expect(await t.sek.ctx.ledger.account(`customer:${customerId}`)).toMatchObject({ balance: 2000n, debitsPending: 2000n });
    expect(await t.admin(second, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
    expect(await t.admin(t.eur, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });
});
