import { BoundedCache } from '../boundedCache.ts';
import type { Static } from 'typebox';
import {
  BalanceResponse,
  MerchantCertificateResponse,
  MerchantPublicInfo,
  OperatorInfo,
  OperatorPaths,
  RegisterCustomerResponse,
} from '../api.ts';
import { ObolError, type ObolErrorJson } from '../errors.ts';
import {
  type ExchangeTable,
  convert,
  rateBetween,
  requireValidTable,
  tableStatus,
  verifyExchangeTable,
} from '../exchangeTable.ts';
import { generateSigningKeyPair, keyHandle } from '../keys.ts';
import { checkSchema } from '../messages.ts';
import { type Amount, formatAmount, parseAmount } from '../money.ts';
import { type Cert, certToBase64, describeCert, operatorMessageKey, parseCert, verifyChain } from '../pki.ts';
import type { Signed } from '../signed.ts';
import type { AccountRecord } from '../walletStore.ts';
import { type AgentCore, baseUrl, errorJson } from './core.ts';

/** What the UI may show of the account: no keys. */
export interface AccountView {
  operatorUrl: string;
  operatorId: string;
  operatorName: string;
  currency: string;
  customerId: string;
  kid: string;
  registeredAt: number;
}

export type Balance = Static<typeof BalanceResponse>;

/**
 * The exchange table and how the wallet got it. 'valid': the cached table; 'refreshed': fetched
 * now; 'unavailable': no valid table could be fetched — `table` is then the expired one, if any,
 * and `error` says why, so the UI can tell the shopper the rates are stale.
 */
export type ExchangeTableResult =
  | { status: 'valid' | 'refreshed'; table: ExchangeTable }
  | { status: 'unavailable'; table?: ExchangeTable; error: ObolErrorJson };

export function accountView(a: AccountRecord): AccountView {
  return {
    operatorUrl: a.operatorUrl,
    operatorId: a.operatorId,
    operatorName: a.operatorName,
    currency: a.currency,
    customerId: a.customerId,
    kid: a.kid,
    registeredAt: a.registeredAt,
  };
}

/**
 * Registration: learn the operator, make the long-term key (non-extractable), have the operator
 * certify it, and check that certificate chains to the root through the operator's certificate
 * and holds our key before anything is stored.
 */
export async function register(core: AgentCore, operatorUrl: string, displayName?: string): Promise<AccountView> {
  if (await core.store.getAccount()) throw new ObolError('CONFLICT', 'this wallet already has an account');
  const url = baseUrl(operatorUrl);
  const info = await core.http.get(`${url}/v1/operator`);
  checkSchema(OperatorInfo, info, 'operator information');

  const keys = await keyHandle(await generateSigningKeyPair(false, core.crypto), core.crypto);
  const request = displayName === undefined ? { publicKey: keys.publicKeySpki } : { publicKey: keys.publicKeySpki, displayName };
  const response = await core.http.post(`${url}/v1/customers`, request);
  checkSchema(RegisterCustomerResponse, response, 'registration response');

  // Trust comes from the roots the wallet was built or configured with, never from the answer: the
  // operator's `rootCert` is not consulted. Its certificate must chain to one of ours.
  const operatorCert = parseCert(response.operatorCert);
  const now = core.now();
  const root = await trustedRootOf(core, operatorCert, info.operatorId, now);
  if (describeCert(operatorCert).subjectId !== info.operatorId) {
    throw new ObolError('CERT_UNTRUSTED', `the operator certificate is not for ${info.operatorId}`);
  }
  const customer = await verifyChain(
    response.customerCert,
    { trustedRoots: [root], intermediates: [operatorCert] },
    { now, expectKind: 'customer' },
    core.crypto,
  );
  // The key the operator's messages must verify under: its signing certificate, issued by it.
  await operatorMessageKey(response.signingCert, operatorCert, now, core.crypto);
  if (customer.publicKeySpki !== keys.publicKeySpki) {
    throw new ObolError('CERT_UNTRUSTED', 'the customer certificate does not hold this wallet’s key');
  }
  if (response.currency !== info.currency) {
    throw new ObolError('CURRENCY_MISMATCH', `the operator said ${info.currency} and then ${response.currency}`);
  }
  const account: AccountRecord = {
    operatorUrl: url,
    operatorId: info.operatorId,
    operatorName: info.name,
    currency: response.currency,
    customerId: response.customerId,
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    publicKey: keys.publicKeySpki,
    kid: keys.kid,
    customerCert: response.customerCert,
    operatorCert: response.operatorCert,
    operatorSigningCert: response.signingCert,
    rootCert: certToBase64(root),
    registeredAt: now,
  };
  await core.store.putAccount(account);
  return accountView(account);
}

/**
 * The trusted root the operator's certificate chains to. OPERATOR_NOT_TRUSTED when none does (a
 * foreign root, even one with the same name, or a self-made one); other certificate errors (expired,
 * wrong kind) keep their own code.
 */
async function trustedRootOf(core: AgentCore, operatorCert: Cert, operatorId: string, now: number): Promise<Cert> {
  if (core.trustedRoots.length === 0) {
    throw new ObolError('OPERATOR_NOT_TRUSTED', `operator ${operatorId} is not trusted: this wallet has no trusted interbank root configured`);
  }
  for (const root of core.trustedRoots) {
    try {
      await verifyChain(operatorCert, { trustedRoots: [root] }, { now, expectKind: 'operator' }, core.crypto);
      return root;
    } catch (e) {
      if (!(e instanceof ObolError && e.name === 'CERT_UNTRUSTED')) throw e;
    }
  }
  throw new ObolError(
    'OPERATOR_NOT_TRUSTED',
    `operator ${operatorId} is not trusted: its certificate (issued by "${operatorCert.issuer}") does not chain to an interbank root this wallet trusts`,
  );
}

export async function balance(core: AgentCore): Promise<Balance> {
  const account = await core.account();
  return core.withLogin(async (_login, headers) => {
    const body = await core.http.get(core.operatorUrl(account, '/v1/balance'), headers);
    checkSchema(BalanceResponse, body, 'balance');
    return body;
  });
}

/** Demo operators only: add funds to our own account. Returns the new balance. */
export async function demoTopUp(core: AgentCore, amountText: string): Promise<Balance> {
  const account = await core.account();
  const a = parseAmount(amountText);
  if (a.currency !== account.currency) throw new ObolError('CURRENCY_MISMATCH', `top up in ${account.currency}, not ${a.currency}`);
  if (a.value <= 0n) throw new ObolError('INVALID_AMOUNT', 'a top-up must be more than zero');
  await core.withLogin((_login, headers) => core.http.post(core.operatorUrl(account, '/v1/demo/top-up'), { amount: formatAmount(a) }, headers));
  return balance(core);
}

/**
 * The cached table while valid (and, with `refreshWithinMs`, not about to expire); otherwise a
 * fresh one from our operator, verified with its key.
 */
export async function exchangeTable(core: AgentCore, refreshWithinMs = 0): Promise<ExchangeTableResult> {
  const account = await core.account();
  const cached = await core.store.getTable();
  const mine = cached && cached.table.operatorId === account.operatorId ? cached : undefined;
  const now = core.now();
  if (mine && tableStatus(mine.table, now + refreshWithinMs) === 'valid') return { status: 'valid', table: mine.table };
  try {
    const body = await core.http.get(core.operatorUrl(account, '/v1/exchange-table'));
    const message = unwrapTable(body);
    const table = await verifyExchangeTable(message, account.operatorId, await core.operatorResolver(account), core.crypto);
    if (!mine || table.issuedAt >= mine.table.issuedAt) {
      await core.store.putTable({ table, signed: message as Signed<'operator.exchangeTable'>, fetchedAt: now });
    }
    requireValidTable(table, now);
    return { status: 'refreshed', table };
  } catch (e) {
    const latest = (await core.store.getTable())?.table;
    const table = latest && latest.operatorId === account.operatorId ? latest : undefined;
    if (table && tableStatus(table, now) === 'valid') return { status: 'valid', table }; // refreshed early, failed: still good
    return table ? { status: 'unavailable', table, error: errorJson(e) } : { status: 'unavailable', error: errorJson(e) };
  }
}

/** The operator publishes the signed table itself; a `{ table }` wrapper is accepted too. */
function unwrapTable(body: unknown): unknown {
  if (body && typeof body === 'object' && !('sig' in body) && 'table' in body) return (body as { table: unknown }).table;
  return body;
}

/** A valid table, fetched if needed; EXCHANGE_TABLE_MISSING or EXCHANGE_TABLE_EXPIRED otherwise. */
export async function validTable(core: AgentCore, refreshWithinMs = 0): Promise<ExchangeTable> {
  const result = await exchangeTable(core, refreshWithinMs);
  return requireValidTable(result.table, core.now());
}

/**
 * A price in the customer's currency at the operator's table (half-even, the rule for showing
 * prices). A price already in the customer's currency needs no table.
 */
export async function quote(core: AgentCore, priceText: string): Promise<string> {
  const account = await core.account();
  const price = parseAmount(priceText);
  if (price.currency === account.currency) return formatAmount(price);
  return formatAmount(priceIn(await validTable(core), price, account.currency));
}

/** The rule for showing a price in another currency: at `table`, half-even (RATE_UNAVAILABLE when it lacks one). */
export function priceIn(table: ExchangeTable, price: Amount, currency: string): Amount {
  if (price.currency === currency) return price;
  return convert(price, currency, rateBetween(table, price.currency, currency), 'half-even').amount;
}

/** The customer-currency amount that surely covers `price` at `table` (rounded up). */
export function coverIn(table: ExchangeTable, price: Amount, currency: string): Amount {
  if (price.currency === currency) return price;
  return convert(price, currency, rateBetween(table, price.currency, currency), 'ceil').amount;
}

/**
 * Who the merchant at `merchantUrl` is, as the shopper's own operator vouches for it — before any
 * deposit: the merchant's certificate re-issued by our operator, checked here, with the web
 * origins it names. What a confirmation prompt shows.
 */
export async function verifiedMerchant(core: AgentCore, merchantUrl: string): Promise<VerifiedMerchant> {
  const info = await merchantInfo(core, merchantUrl);
  const account = await core.account();
  const path = OperatorPaths.merchantCertificate
    .replace(':operatorId', encodeURIComponent(info.operatorId))
    .replace(':merchantId', encodeURIComponent(info.merchantId));
  const body = await core.http.get(core.operatorUrl(account, path));
  checkSchema(MerchantCertificateResponse, body, 'merchant certificate');
  const cert = await verifyChain(
    body.merchantCert,
    { trustedIssuers: [parseCert(account.operatorCert)] },
    { now: core.now(), expectKind: 'merchant' },
    core.crypto,
  );
  if (cert.merchantId !== info.merchantId) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `the certificate names ${cert.merchantId}, the shop says ${info.merchantId}`);
  }
  return { merchantId: info.merchantId, name: info.name, operatorId: info.operatorId, currency: info.currency, origins: cert.origins ?? [] };
}

export interface VerifiedMerchant {
  merchantId: string;
  /** The shop's own words (not vouched for). */
  name: string;
  operatorId: string;
  currency: string;
  /** The web origins the merchant's certificate names. */
  origins: string[];
}

export async function merchantInfo(core: AgentCore, merchantUrl: string): Promise<MerchantPublicInfo> {
  const url = baseUrl(merchantUrl);
  let kept = knownMerchants.get(core);
  if (!kept) {
    kept = new BoundedCache(64);
    knownMerchants.set(core, kept);
  }
  const hit = kept.get(url);
  if (hit && core.now() - hit.at < MERCHANT_INFO_REUSE_MS) return hit.info;
  const entry = {
    info: core.http.get(`${url}/merchant`).then((body) => {
      checkSchema(MerchantPublicInfo, body, 'merchant information');
      return body;
    }),
    at: core.now(),
  };
  kept.set(url, entry);
  try {
    return await entry.info;
  } catch (e) {
    if (kept.get(url) === entry) kept.delete(url); // a failure is not kept: the next call asks again
    throw e;
  }
}

/**
 * How long a merchant's public information is used before it is asked for again. It is what the
 * shop says of itself (checked against its certificate wherever that matters), asked for by every
 * purchase and session open: one GET per merchant a minute, not one per click.
 */
export const MERCHANT_INFO_REUSE_MS = 60_000;
const knownMerchants = new WeakMap<AgentCore, BoundedCache<string, { info: Promise<MerchantPublicInfo>; at: number }>>();
