import { ObolError } from '@obol/protocol/errors';
import { keyIdOf } from '@obol/protocol/keys';
import { formatAmount } from '@obol/protocol/money';
import { certToBase64, issueCustomerCert } from '@obol/protocol/pki';
import { randomId, sha256, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import { type OperatorContext, accounts } from './context.ts';

/** Registration, logon and bearer tokens of the account manager's customers. */

const CUSTOMER_CERT_LIFETIME = 2 * 365 * 86_400_000;
const CHALLENGE_LIFETIME = 120_000;
const LOGON_LIFETIME = 12 * 3_600_000;

export interface CustomerRow {
  id: string;
  public_key: string;
  cert: string;
}

export async function registerCustomer(ctx: OperatorContext, publicKey: string, displayName?: string) {
  const customerId = await keyIdOf(publicKey);
  await ctx.keys.addSpki(publicKey); // refuses what is not a P-256 key
  const now = ctx.clock.now();
  const existing = await findCustomer(ctx, customerId);
  let cert = existing?.cert;
  if (!cert) {
    cert = certToBase64(
      await issueCustomerCert({
        customerId,
        publicKey,
        issuer: ctx.identity.issuer,
        notBefore: now - 60_000,
        notAfter: now + CUSTOMER_CERT_LIFETIME,
      }),
    );
    await ctx.db.transaction(
      async (tx) => {
        await tx.query(
          `INSERT INTO customers (id, public_key, cert, display_name, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (id) DO NOTHING`,
          [customerId, publicKey, cert, displayName ?? null, now],
        );
        await ctx.ledger.openAccountIn(tx, { id: accounts.customer(customerId), kind: 'customer', currency: ctx.config.currency });
      },
      { isolation: 'read committed' },
    );
    cert = (await findCustomer(ctx, customerId))!.cert;
  }
  return {
    customerId,
    customerCert: cert,
    operatorCert: ctx.identity.certB64,
    signingCert: ctx.identity.signingCertB64,
    rootCert: ctx.identity.rootB64,
    currency: ctx.config.currency,
  };
}

export async function findCustomer(ctx: OperatorContext, customerId: string): Promise<CustomerRow | undefined> {
  const [row] = await ctx.db.query<CustomerRow>('SELECT id, public_key, cert FROM customers WHERE id = $1', [customerId]);
  return row;
}

/** The customer's long-term key, imported once. */
export async function customerKey(ctx: OperatorContext, customerId: string): Promise<CryptoKey | undefined> {
  const cached = ctx.keys.get(customerId);
  if (cached) return cached;
  const row = await findCustomer(ctx, customerId);
  if (!row) return undefined;
  await ctx.keys.addSpki(row.public_key);
  return ctx.keys.get(customerId);
}

export async function newChallenge(ctx: OperatorContext, customerId: string) {
  if (!(await findCustomer(ctx, customerId))) throw new ObolError('NO_WALLET_ACCOUNT', 'no customer with that id: register first');
  const challenge = randomId(32);
  const expiresAt = ctx.clock.now() + CHALLENGE_LIFETIME;
  await ctx.db.query('INSERT INTO login_challenges (challenge, customer_id, expires_at) VALUES ($1, $2, $3)', [
    challenge,
    customerId,
    expiresAt,
  ]);
  return { challenge, expiresAt };
}

/** Logon (before FIG 2 step 2): a fresh challenge signed with the long-term key opens a SessionIdentity. */
export async function logon(ctx: OperatorContext, customerId: string, challenge: string) {
  const now = ctx.clock.now();
  const token = randomId(32);
  const tokenHash = await hashToken(token);
  const { sessionId, expiresAt } = await ctx.db.transaction(
    async (tx) => {
      const used = await tx.query(
        `UPDATE login_challenges SET used = true
         WHERE challenge = $1 AND customer_id = $2 AND used = false AND expires_at > $3 RETURNING challenge`,
        [challenge, customerId, now],
      );
      if (used.length === 0) throw new ObolError('UNAUTHORIZED', 'the logon challenge is unknown, used or expired: ask for a new one');
      const [counter] = await tx.query<{ value: bigint }>(
        `UPDATE counters SET value = value + 1 WHERE name = 'session' RETURNING value`,
      );
      const sessionId = `${ctx.config.operatorId}.${counter!.value}`;
      const expiresAt = now + LOGON_LIFETIME;
      await tx.query(
        'INSERT INTO sessions (id, customer_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)',
        [sessionId, customerId, tokenHash, expiresAt, now],
      );
      return { sessionId, expiresAt };
    },
    { isolation: 'read committed' },
  );
  const balance = formatAmount(await ctx.ledger.balance(accounts.customer(customerId)));
  return { sessionId, token, expiresAt, balance };
}

async function hashToken(token: string): Promise<string> {
  return toBase64Url(await sha256(utf8.encode(token)));
}

/** The customer behind a bearer token (reads and demo top-ups; money moves only on signed messages). */
export async function customerOfToken(ctx: OperatorContext, authorization: string | undefined): Promise<{ customerId: string; sessionId: string }> {
  const token = /^Bearer ([A-Za-z0-9_-]{16,64})$/.exec(authorization ?? '')?.[1];
  if (!token) throw new ObolError('UNAUTHORIZED', 'log on first: a bearer token is required');
  const [row] = await ctx.db.query<{ id: string; customer_id: string; expires_at: bigint }>(
    'SELECT id, customer_id, expires_at FROM sessions WHERE token_hash = $1',
    [await hashToken(token)],
  );
  if (!row) throw new ObolError('UNAUTHORIZED', 'unknown bearer token: log on again');
  if (Number(row.expires_at) <= ctx.clock.now()) throw new ObolError('SESSION_EXPIRED', 'the logon session has expired: log on again');
  return { customerId: row.customer_id, sessionId: row.id };
}

export async function customerBalance(ctx: OperatorContext, customerId: string) {
  const account = await ctx.ledger.account(accounts.customer(customerId));
  const currency = account.currency;
  // Deposits reserved and not yet cleared stay in the account until posted; the wallet is shown
  // them as held, apart from what it can spend.
  const own = account.balance - account.debitsPending;
  const limit = account.creditLimit ?? 0n;
  return {
    customerId,
    balance: formatAmount({ currency, value: own }),
    available: formatAmount({ currency, value: own + limit }),
    held: formatAmount({ currency, value: account.debitsPending }),
    creditLimit: formatAmount({ currency, value: limit }),
  };
}
