/**
 * A merchant's statement from its own operator (issue 15 item 4): `obol merchant status |
 * sessions | payouts`. The request is a `merchant.statement` signed with the shop's own key (its
 * folder's merchant.key.json), fresh and with a new id each time: the operator answers it once,
 * and never needs its admin token for it.
 */
import { readFile } from 'node:fs/promises';
import { MerchantStatement, OperatorPaths } from '@obol/protocol/api';
import type { KeyHandle } from '@obol/protocol/keys';
import { formatAmount, parseAmount } from '@obol/protocol/money';
import { checkSchema } from '@obol/protocol/messages';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson, trustServerCas } from '../http/client.ts';
import { type ShopFolder, loadMerchantKey } from './setup.ts';

export interface StatementQuery {
  /** Deposits opened at or after this time (ms); default: all. */
  since?: number;
  /** At most this many deposits (1–1000; the operator's default 100). */
  limit?: number;
}

type Post = (url: string, body: unknown) => Promise<unknown>;

/** Ask the operator for the statement, signed with `key`; the answer is checked against its schema. */
export async function requestStatement(
  o: { operatorUrl: string; merchantId: string; key: KeyHandle; now: number; post: Post },
  query: StatementQuery = {},
): Promise<MerchantStatement> {
  const request = await signMessage(
    'merchant.statement',
    {
      msgId: randomId(),
      merchantId: o.merchantId,
      time: o.now,
      ...(query.since !== undefined ? { since: query.since } : {}),
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
    },
    o.key.signer,
  );
  const answer = await o.post(`${o.operatorUrl.replace(/\/+$/, '')}${OperatorPaths.merchantStatement}`, request);
  checkSchema(MerchantStatement, answer, 'the operator’s statement');
  return answer;
}

/** The statement of the shop in `folder`, from the operator in its shop.json. */
export async function shopStatement(folder: ShopFolder, query: StatementQuery = {}): Promise<MerchantStatement> {
  const { config } = folder;
  if (config.operatorCa) trustServerCas([await readFile(config.operatorCa, 'utf8')]);
  return requestStatement(
    { operatorUrl: config.operatorUrl, merchantId: config.merchantId, key: await loadMerchantKey(folder.dir), now: Date.now(), post: (url, body) => postJson(url, body) },
    query,
  );
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** `obol merchant status`: balance and deposits at the operator. */
export function formatStatus(s: MerchantStatement): string {
  return [
    `${s.merchantId} at ${s.operatorId}, ${new Date(s.time).toISOString()}`,
    ...s.balances.map(
      (b) =>
        `  balance ${b.balance} (cleared deposits: ${b.clearedDeposits}); reserved for you in ${b.openDeposits} open deposit${b.openDeposits === 1 ? '' : 's'}: ${b.reserved}`,
    ),
  ].join('\n');
}

/** `obol merchant sessions`: each deposit (one per trading session) and how it cleared. */
export function formatDeposits(s: MerchantStatement): string {
  if (s.deposits.length === 0) return 'No deposits yet.';
  const head = `${'opened (UTC)'.padEnd(20)} ${'state'.padEnd(8)} ${'deposit'.padStart(14)} ${'paid to you'.padStart(14)} ${'purchases'.padStart(9)}  outcome`;
  const lines = s.deposits.map((d) =>
    [
      new Date(d.openedAt).toISOString().slice(0, 19).replace('T', ' ').padEnd(20),
      d.state.padEnd(8),
      d.deposit.padStart(14),
      (d.charged ?? '—').padStart(14),
      String(d.count ?? '—').padStart(9),
      ` ${d.outcome ?? ''}${d.flagged ? ' (flagged: the records disagreed)' : ''}`,
    ].join(' '),
  );
  return [head, ...lines].join('\n');
}

/**
 * `obol merchant payouts`: the operator makes no payouts through Obol — what it owes the merchant
 * is its balance, built from cleared deposits; paying it out to a bank account is agreed with the
 * operator outside Obol. So this shows the balance owed and the cleared deposits behind it, per
 * day of clearing (of the deposits in the statement).
 */
export function formatPayouts(s: MerchantStatement): string {
  const perDay = new Map<string, { currency: string; value: bigint; count: number }>();
  for (const d of s.deposits) {
    if (d.state !== 'cleared' || d.charged === null || d.clearedAt === null) continue;
    const charged = parseAmount(d.charged);
    const key = day(d.clearedAt);
    const line = perDay.get(key) ?? { currency: charged.currency, value: 0n, count: 0 };
    line.value += charged.value;
    line.count += 1;
    perDay.set(key, line);
  }
  const days = [...perDay.entries()].sort(([a], [b]) => (a < b ? 1 : -1));
  return [
    ...s.balances.map((b) => `Owed to you by ${s.operatorId}: ${b.balance} (${b.clearedDeposits} cleared deposit${b.clearedDeposits === 1 ? '' : 's'}).`),
    `${s.operatorId} records no payouts through Obol: paying this balance to your bank account is agreed with the operator.`,
    days.length === 0
      ? 'Cleared per day: none in this statement.'
      : ['Cleared per day (UTC):', ...days.map(([d, l]) => `  ${d}  ${String(l.count).padStart(6)}  ${formatAmount({ currency: l.currency, value: l.value })}`)].join('\n'),
  ].join('\n');
}
