/**
 * The operator's double-entry ledger (DESIGN.md "Money"): a few verbs, each exactly one SQL
 * transaction, and an invariant check (`audit`) that tests and operators can run at any moment.
 *
 * The rules it keeps:
 * - every movement's legs sum to zero per currency, and each leg is in its account's currency;
 * - no account ever ends below minus its credit limit (NULL limit = unlimited, for system accounts);
 * - a movement id is an idempotency key: replaying the same movement changes nothing and returns the
 *   original; the same id with a different body is a CONFLICT.
 *
 * Race-freedom across processes comes from the database, not from this process: each leg is one
 * conditional `UPDATE … WHERE balance + amount >= -credit_limit`, which PostgreSQL re-checks
 * against the latest committed row after waiting for its lock. So two processes sharing one
 * PostgreSQL cannot both spend the same money, and no read-then-write window exists.
 */
import { type Clock, systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { type Amount, exponentOf, formatAmount } from '@obol/protocol/money';
import { type Db, type Queryable, sqlState } from './db.ts';

export const ACCOUNT_KINDS = ['customer', 'merchant', 'held_deposit', 'inter_operator', 'fx', 'funding'] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

/**
 * Accounts of people and held deposits may not go below zero unless given a limit; the operator's
 * own system accounts are where money enters and leaves the books, so they have none.
 */
const DEFAULT_CREDIT_LIMIT: Record<AccountKind, bigint | null> = {
  customer: 0n,
  merchant: 0n,
  held_deposit: 0n,
  inter_operator: null,
  fx: null,
  funding: null,
};

export interface Account {
  id: string;
  kind: AccountKind;
  currency: string;
  /** How far below zero the balance may go, in minor units; null = no limit. */
  creditLimit: bigint | null;
  /** Minor units. */
  balance: bigint;
}

export interface OpenAccount {
  id: string;
  kind: AccountKind;
  currency: string;
  /** Omitted: the kind's default (0 for customer, merchant, held_deposit; unlimited otherwise). */
  creditLimit?: bigint | null;
}

/** One side of a movement: money into (positive) or out of (negative) an account. */
export interface Leg {
  account: string;
  amount: Amount;
}

/** JSON that a movement carries for people and later lookups (ids, references, rates). */
export type Memo = { [key: string]: unknown };

export interface Movement {
  id: string;
  kind: string;
  /** As stored (JSON): a bigint given in the memo comes back as its decimal string. */
  memo: Memo;
  legs: Leg[];
  /** Milliseconds since the epoch, from the ledger's clock when first booked. */
  createdAt: number;
  /** True when this call found the movement already booked and changed nothing. */
  replayed: boolean;
}

export interface AuditReport {
  ok: boolean;
  /** Sum of all entries per currency: zero in a sound ledger. */
  perCurrency: { currency: string; sum: bigint }[];
  /** Accounts whose balance is below minus their credit limit. */
  underLimit: Account[];
  /** Accounts whose stored balance is not the sum of their entries. */
  balanceMismatches: { account: string; stored: bigint; fromEntries: bigint }[];
  /** Movements whose legs do not sum to zero in some currency. */
  unbalancedMovements: { movementId: string; currency: string; sum: bigint }[];
}

const MAX_ID = 200;
const MAX_LEGS = 100;
const MAX_INT8 = 2n ** 63n - 1n;

interface AccountRow {
  id: string;
  kind: AccountKind;
  currency: string;
  credit_limit: bigint | string | null;
  balance: bigint | string;
}

const ACCOUNT_COLUMNS = 'id, kind, currency, credit_limit, balance';

export class Ledger {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Open an account. Opening the same account again (same kind, currency and limit) returns it
   * unchanged, so start-up seeding can run every time; anything else under that id is a CONFLICT.
   */
  async openAccount(spec: OpenAccount): Promise<Account> {
    return this.db.transaction((tx) => this.openAccountIn(tx, spec), { isolation: 'read committed' });
  }

  /** openAccount inside the caller's transaction. */
  async openAccountIn(tx: Queryable, spec: OpenAccount): Promise<Account> {
    checkId('account id', spec.id);
    if (!ACCOUNT_KINDS.includes(spec.kind)) throw new ObolError('MALFORMED', `unknown account kind: ${spec.kind}`);
    exponentOf(spec.currency); // refuses currencies Obol does not know
    const limit = spec.creditLimit === undefined ? DEFAULT_CREDIT_LIMIT[spec.kind] : spec.creditLimit;
    checkLimit(limit);
    const [created] = await tx.query<AccountRow>(
      `INSERT INTO accounts (id, kind, currency, credit_limit, balance, created_at)
       VALUES ($1, $2, $3, $4, 0, $5::timestamptz)
       ON CONFLICT (id) DO NOTHING RETURNING ${ACCOUNT_COLUMNS}`,
      [spec.id, spec.kind, spec.currency, limit, this.timestamp()],
    );
    if (created) return toAccount(created);
    const existing = await mustGetAccount(tx, spec.id);
    if (existing.kind !== spec.kind || existing.currency !== spec.currency || existing.creditLimit !== limit) {
      throw new ObolError(
        'CONFLICT',
        `account ${spec.id} already exists as a ${existing.kind} account in ${existing.currency}` +
          ` with limit ${existing.creditLimit ?? 'none'}; use setCreditLimit to change a limit`,
      );
    }
    return existing;
  }

  /**
   * Change how far an account may go below zero (null = no limit). A limit below what the account
   * already owes is refused: the database keeps every balance within its limit at all times.
   */
  async setCreditLimit(accountId: string, limit: bigint | null): Promise<Account> {
    checkLimit(limit);
    return this.db.transaction(
      async (tx) => {
        const [row] = await tx.query<AccountRow>(
          `UPDATE accounts SET credit_limit = $2
           WHERE id = $1 AND ($2::bigint IS NULL OR balance >= -$2::bigint)
           RETURNING ${ACCOUNT_COLUMNS}`,
          [accountId, limit],
        );
        if (row) return toAccount(row);
        const account = await mustGetAccount(tx, accountId);
        throw new ObolError(
          'INVALID_AMOUNT',
          `account ${accountId} owes ${formatAmount({ currency: account.currency, value: -account.balance })},` +
            ' more than the new credit limit',
        );
      },
      { isolation: 'read committed' },
    );
  }

  /**
   * Book one movement. Refused before touching the database when the legs are malformed or do not
   * sum to zero per currency; refused with INSUFFICIENT_FUNDS (nothing booked) when an account
   * would end below its limit.
   */
  async transfer(movementId: string, kind: string, legs: Leg[], memo: Memo = {}): Promise<Movement> {
    // read committed is what the conditional UPDATE needs: a waiting update re-reads the row that
    // the other transaction committed and re-checks the limit on it, instead of failing.
    return this.db.transaction((tx) => this.transferIn(tx, movementId, kind, legs, memo), {
      isolation: 'read committed',
    });
  }

  /**
   * transfer inside the caller's transaction, so a movement commits together with the protocol
   * state it belongs to (a deposit reservation and its transaction row, a clearing and its
   * billing records). The caller's transaction must be read committed (see transfer).
   */
  async transferIn(tx: Queryable, movementId: string, kind: string, legs: Leg[], memo: Memo = {}): Promise<Movement> {
    checkId('movement id', movementId);
    if (typeof kind !== 'string' || kind === '' || kind.length > 64) {
      throw new ObolError('MALFORMED', 'a movement needs a kind (1 to 64 characters)');
    }
    checkLegs(legs);
    const memoJson = toJson(memo);
    const createdAt = this.clock.now();
    const inserted = await tx.query(
      `INSERT INTO movements (id, kind, memo, created_at) VALUES ($1, $2, $3::text::jsonb, $4::timestamptz)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [movementId, kind, memoJson, new Date(createdAt).toISOString()],
    );
    if (inserted.length === 0) return replay(tx, movementId, kind, legs, memoJson);

    // Lock accounts in one global order (by id) so two movements over the same accounts
    // wait for each other instead of deadlocking.
    const byAccount = [...legs].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
    for (const leg of byAccount) await applyLeg(tx, leg);

    const params: unknown[] = [movementId, new Date(createdAt).toISOString()];
    const values = legs.map((leg, i) => {
      params.push(i, leg.account, leg.amount.currency, leg.amount.value);
      const p = params.length;
      return `($1, $${p - 3}, $${p - 2}, $${p - 1}, $${p}, $2::timestamptz)`;
    });
    await tx.query(
      `INSERT INTO entries (movement_id, leg, account_id, currency, amount, created_at) VALUES ${values.join(', ')}`,
      params,
    );

    // Checked in code above; checked again on what was actually written, in the same
    // transaction, so a bug between the two can never commit an unbalanced movement. (A
    // deferred constraint trigger would do the same but is not portable to the distributed
    // engines we keep open.)
    const unbalanced = await tx.query<{ currency: string }>(
      `SELECT currency FROM entries WHERE movement_id = $1 GROUP BY currency HAVING SUM(amount) <> 0`,
      [movementId],
    );
    if (unbalanced.length > 0) {
      throw new ObolError('INTERNAL', `movement ${movementId} was written unbalanced; rolled back`);
    }
    return { id: movementId, kind, memo: JSON.parse(memoJson) as Memo, legs, createdAt, replayed: false };
  }

  /** Move a deposit from a customer's account into a held-deposit account (FIG 2 step 3). */
  async reserve(
    movementId: string,
    customerAccount: string,
    heldAccount: string,
    amount: Amount,
    memo: Memo = {},
  ): Promise<Movement> {
    checkPositive(amount);
    return this.transfer(
      movementId,
      'reserve',
      [
        { account: customerAccount, amount: { currency: amount.currency, value: -amount.value } },
        { account: heldAccount, amount },
      ],
      memo,
    );
  }

  /** Give (part of) a held deposit back to the customer's account (FIG 3 step 11). */
  async release(
    movementId: string,
    heldAccount: string,
    customerAccount: string,
    amount: Amount,
    memo: Memo = {},
  ): Promise<Movement> {
    checkPositive(amount);
    return this.transfer(
      movementId,
      'release',
      [
        { account: heldAccount, amount: { currency: amount.currency, value: -amount.value } },
        { account: customerAccount, amount },
      ],
      memo,
    );
  }

  async account(accountId: string): Promise<Account> {
    return mustGetAccount(this.db, accountId);
  }

  async balance(accountId: string): Promise<Amount> {
    const account = await mustGetAccount(this.db, accountId);
    return { currency: account.currency, value: account.balance };
  }

  /** A booked movement, or undefined. */
  async movement(movementId: string): Promise<Movement | undefined> {
    return this.db.transaction((tx) => loadMovement(tx, movementId), { isolation: 'repeatable read' });
  }

  /**
   * Check the ledger's invariants over everything stored: entries sum to zero per currency and per
   * movement, every stored balance is the sum of its entries, and no account is below its limit.
   * It reads one consistent snapshot, so it may run while money moves.
   */
  async audit(): Promise<AuditReport> {
    return this.db.transaction(
      async (tx) => {
        const perCurrency = (
          await tx.query<{ currency: string; sum: string }>(
            'SELECT currency, SUM(amount) AS sum FROM entries GROUP BY currency ORDER BY currency',
          )
        ).map((r) => ({ currency: r.currency, sum: toBigint(r.sum) }));

        const unbalancedMovements = (
          await tx.query<{ movement_id: string; currency: string; sum: string }>(
            `SELECT movement_id, currency, SUM(amount) AS sum FROM entries
             GROUP BY movement_id, currency HAVING SUM(amount) <> 0 ORDER BY movement_id, currency`,
          )
        ).map((r) => ({ movementId: r.movement_id, currency: r.currency, sum: toBigint(r.sum) }));

        const balanceMismatches = (
          await tx.query<{ id: string; balance: bigint; from_entries: string }>(
            `SELECT a.id, a.balance, COALESCE(e.total, 0) AS from_entries
             FROM accounts a
             LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM entries GROUP BY account_id) e
               ON e.account_id = a.id
             WHERE a.balance <> COALESCE(e.total, 0)
             ORDER BY a.id`,
          )
        ).map((r) => ({ account: r.id, stored: toBigint(r.balance), fromEntries: toBigint(r.from_entries) }));

        const underLimit = (
          await tx.query<AccountRow>(
            `SELECT ${ACCOUNT_COLUMNS} FROM accounts
             WHERE credit_limit IS NOT NULL AND balance < -credit_limit ORDER BY id`,
          )
        ).map(toAccount);

        const ok =
          perCurrency.every((c) => c.sum === 0n) &&
          unbalancedMovements.length === 0 &&
          balanceMismatches.length === 0 &&
          underLimit.length === 0;
        return { ok, perCurrency, underLimit, balanceMismatches, unbalancedMovements };
      },
      { isolation: 'repeatable read' },
    );
  }

  private timestamp(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

/**
 * Add one leg to its account's balance, but only if the account stays within its limit. When no
 * row comes back, find out why, so the caller gets the right error.
 */
async function applyLeg(tx: Queryable, leg: Leg): Promise<void> {
  const { currency, value } = leg.amount;
  const updated = await tx
    .query(
      `UPDATE accounts SET balance = balance + $1
       WHERE id = $2 AND currency = $3 AND (credit_limit IS NULL OR balance + $1 >= -credit_limit)
       RETURNING balance`,
      [value, leg.account, currency],
    )
    .catch((e: unknown) => {
      // A balance is a 64-bit count of minor units; one that would leave that range is refused
      // as an amount (the transaction rolls back), not reported as a crash.
      if (sqlState(e) === '22003') {
        throw new ObolError('INVALID_AMOUNT', `account ${leg.account} cannot hold a balance that large`);
      }
      throw e;
    });
  if (updated.length > 0) return;
  const account = await mustGetAccount(tx, leg.account);
  if (account.currency !== currency) {
    throw new ObolError(
      'CURRENCY_MISMATCH',
      `account ${leg.account} is in ${account.currency}, not ${currency}`,
    );
  }
  throw new ObolError(
    'INSUFFICIENT_FUNDS',
    `account ${leg.account} cannot pay ${formatAmount({ currency, value: -value })}`,
  );
}

/** The movement id was booked before: the same body is a harmless replay, another is a CONFLICT. */
async function replay(tx: Queryable, id: string, kind: string, legs: Leg[], memoJson: string): Promise<Movement> {
  const original = await loadMovement(tx, id);
  // jsonb equality in SQL compares meaning (key order and spacing do not matter). The memo goes in
  // as text and is cast in SQL, so neither driver re-encodes the JSON string.
  const [memo] = await tx.query<{ same: boolean }>('SELECT memo = $2::text::jsonb AS same FROM movements WHERE id = $1', [
    id,
    memoJson,
  ]);
  if (!original || !memo) throw new ObolError('INTERNAL', `movement ${id} vanished during replay`);
  if (original.kind !== kind || !memo.same || !sameLegs(original.legs, legs)) {
    throw new ObolError('CONFLICT', `movement ${id} was already booked with a different body`);
  }
  return { ...original, replayed: true };
}

async function loadMovement(tx: Queryable, id: string): Promise<Movement | undefined> {
  const [m] = await tx.query<{ id: string; kind: string; memo: Memo; created_at: Date }>(
    'SELECT id, kind, memo, created_at FROM movements WHERE id = $1',
    [id],
  );
  if (!m) return undefined;
  const entries = await tx.query<{ account_id: string; currency: string; amount: bigint }>(
    'SELECT account_id, currency, amount FROM entries WHERE movement_id = $1 ORDER BY leg',
    [id],
  );
  return {
    id: m.id,
    kind: m.kind,
    memo: m.memo,
    legs: entries.map((e) => ({ account: e.account_id, amount: { currency: e.currency, value: toBigint(e.amount) } })),
    createdAt: new Date(m.created_at).getTime(),
    replayed: false,
  };
}

function sameLegs(a: Leg[], b: Leg[]): boolean {
  if (a.length !== b.length) return false;
  // Accounts are unique within a movement, so comparing by account ignores only the order.
  const byAccount = new Map(a.map((leg) => [leg.account, leg.amount]));
  return b.every((leg) => {
    const other = byAccount.get(leg.account);
    return other !== undefined && other.currency === leg.amount.currency && other.value === leg.amount.value;
  });
}

async function mustGetAccount(q: Queryable, id: string): Promise<Account> {
  const [row] = await q.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`, [id]);
  // The catalogue has no "unknown account" code; asking for an account that was never opened is
  // a caller's mistake, hence MALFORMED.
  if (!row) throw new ObolError('MALFORMED', `no such account: ${id}`);
  return toAccount(row);
}

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    kind: row.kind,
    currency: row.currency,
    creditLimit: row.credit_limit === null ? null : toBigint(row.credit_limit),
    balance: toBigint(row.balance),
  };
}

/** Db hands back int8 as bigint and numeric as a string; accept both so no float sneaks in. */
function toBigint(v: bigint | string | number): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string') return BigInt(v);
  if (Number.isSafeInteger(v)) return BigInt(v);
  throw new ObolError('INTERNAL', `the database returned a non-integer amount: ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Input checks (before any SQL)

function checkId(what: string, id: unknown): void {
  if (typeof id !== 'string' || id === '' || id.length > MAX_ID) {
    throw new ObolError('MALFORMED', `${what} must be a string of 1 to ${MAX_ID} characters`);
  }
}

function checkLimit(limit: bigint | null): void {
  if (limit !== null && (typeof limit !== 'bigint' || limit < 0n || limit > MAX_INT8)) {
    throw new ObolError('INVALID_AMOUNT', 'a credit limit is null (none) or a non-negative bigint of minor units');
  }
}

function checkPositive(amount: Amount): void {
  if (typeof amount?.value !== 'bigint' || amount.value <= 0n) {
    throw new ObolError('INVALID_AMOUNT', 'the amount must be positive');
  }
}

function checkLegs(legs: Leg[]): void {
  if (!Array.isArray(legs) || legs.length < 2 || legs.length > MAX_LEGS) {
    throw new ObolError('MALFORMED', `a movement has 2 to ${MAX_LEGS} legs`);
  }
  const seen = new Set<string>();
  const sums = new Map<string, bigint>();
  for (const leg of legs) {
    checkId('leg account', leg?.account);
    if (seen.has(leg.account)) {
      throw new ObolError('MALFORMED', `account ${leg.account} appears twice in one movement; merge its legs`);
    }
    seen.add(leg.account);
    if (!leg.amount || typeof leg.amount !== 'object') {
      throw new ObolError('INVALID_AMOUNT', `leg for ${leg.account} has no amount`);
    }
    const { currency, value } = leg.amount;
    exponentOf(currency);
    if (typeof value !== 'bigint' || value === 0n || value > MAX_INT8 || value < -MAX_INT8) {
      throw new ObolError('INVALID_AMOUNT', `leg for ${leg.account}: amount must be a non-zero bigint of minor units`);
    }
    sums.set(currency, (sums.get(currency) ?? 0n) + value);
  }
  for (const [currency, sum] of sums) {
    if (sum !== 0n) {
      throw new ObolError(
        'INVALID_AMOUNT',
        `the legs do not sum to zero in ${currency} (off by ${formatAmount({ currency, value: sum })})`,
      );
    }
  }
}

/** Memo as JSON text; bigints become decimal strings (JSON has no integers that large). */
function toJson(memo: Memo): string {
  if (memo === null || typeof memo !== 'object' || Array.isArray(memo)) {
    throw new ObolError('MALFORMED', 'a memo is a JSON object');
  }
  return JSON.stringify(memo, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));
}
