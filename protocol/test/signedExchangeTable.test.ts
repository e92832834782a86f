import { describe, expect, it } from 'vitest';
import { ObolError } from '../src/errors.ts';
import { type ExchangeTable, signExchangeTable, tableStatus, verifyExchangeTable } from '../src/exchangeTable.ts';
import { KeyRing, generateSigningKeyPair, keyHandle } from '../src/keys.ts';

const table: ExchangeTable = {
  operatorId: 'op-sek',
  base: 'SEK',
  rates: { EUR: '0.0874', USD: '0.0951' },
  issuedAt: 1_000,
  expiresAt: 1_000 + 3_600_000,
};

describe('an operator publishes a signed exchange table', () => {
  it("the wallet accepts its own operator's table and refuses a changed rate or another signer", async () => {
    const op = await keyHandle(await generateSigningKeyPair());
    const ring = new KeyRing();
    await ring.addSpki(op.publicKeySpki);
    const signed = await signExchangeTable(table, op.signer);
    const back = await verifyExchangeTable(JSON.parse(JSON.stringify(signed)), 'op-sek', ring.resolve);
    expect(back.rates.EUR).toBe('0.0874');
    expect(tableStatus(back, 2_000)).toBe('valid');
    expect(tableStatus(back, table.expiresAt)).toBe('expired');

    const changed = { ...signed, body: { ...signed.body, rates: { ...signed.body.rates, EUR: '0.0974' } } };
    await expect(verifyExchangeTable(changed, 'op-sek', ring.resolve)).rejects.toMatchObject({ name: 'BAD_SIGNATURE' });
    await expect(verifyExchangeTable(signed, 'op-eur', ring.resolve)).rejects.toMatchObject({ name: 'UNKNOWN_OPERATOR' });

    const stranger = await keyHandle(await generateSigningKeyPair());
    const foreign = await signExchangeTable(table, stranger.signer);
    await expect(verifyExchangeTable(foreign, 'op-sek', ring.resolve)).rejects.toBeInstanceOf(ObolError);
  });

  it('an operator cannot sign a table with an unknown currency', async () => {
    const op = await keyHandle(await generateSigningKeyPair());
    await expect(signExchangeTable({ ...table, rates: { XXY: '1.5' } }, op.signer)).rejects.toMatchObject({
      name: 'UNKNOWN_CURRENCY',
    });
  });
});
