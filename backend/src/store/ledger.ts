/**
 * The operator's double-entry ledger (DESIGN.md "Money"). It speaks the protocol's verbs and the
 * roles move money only through them:
 * - `reserve` a deposit: a pending transfer (after TigerBeetle's two-phase transfers) that holds an
 *   amount on its debit account until a deadline, counted against the account's limit at once;
 * - `post` it, once, in full or in part (the rest stays with the debit account), or `void` it;
 *   past its deadline it can no longer be posted and `expireDue` voids it;
 * - `transfer` for movements that settle at once (funding, currency exchange);
 * and `audit`, the one invariant check, that tests and operators can run at any moment.
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
  /** Minor units: the sum of the account's entries (its row and its shard rows). */
  balance: bigint;
  /** Reserved for pending transfers from this account; the limit counts it. */
  debitsPending: bigint;
}

export type PendingState = 'pending' | 'posted' | 'voided' | 'expired';

export interface PaySpec {
  /** The movement id: its idempotency key. */
  id: string;
  kind: string;
  from: string;
  to: string;
  amount: Amount;
  memo?: Memo;
}

export interface ReserveSpec {
  /** The idempotency key of the reservation; its post is booked as movement `post:<id>`. */
  id: string;
  kind: string;
  /** Pays when the transfer is posted; its limit counts the reservation meanwhile. */
  debit: string;
  /** Is paid when the transfer is posted. */
  credit: string;
  amount: Amount;
  /** Milliseconds since the epoch; after it the transfer can no longer be posted. */
  expiresAt: number;
  memo?: Memo;
}

export interface PendingTransfer {
  id: string;
  kind: string;
  debitAccount: string;
  creditAccount: string;
  amount: Amount;
  expiresAt: number;
  state: PendingState;
  /** What was posted, once posted. */
  posted: Amount | null;
  memo: Memo;
  /** True when this call found it already in the state asked for and changed nothing. */
  replayed: boolean;
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
  /** Accounts whose reserved amount is not the sum of their pending transfers. */
  pendingMismatches: { account: string; stored: bigint; fromPending: bigint }[];
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
  debits_pending: bigint | string;
}

/** An account's columns, its balance with its shards'. Selected FROM accounts a. */
const ACCOUNT_COLUMNS = `a.id, a.kind, a.currency, a.credit_limit, a.debits_pending,
  a.balance + COALESCE((SELECT SUM(s.balance) FROM account_shards s WHERE s.account_id = a.id), 0) AS balance`;

const READ_COMMITTED = { isolation: 'read committed' } as const;

/**
 * The operator's own accounts, where money enters and leaves the books: no limit, ever, so their
 * reservations need no tracking and every movement of theirs may land on a shard row.
 */
const SYSTEM_KINDS: readonly AccountKind[] = ['inter_operator', 'fx', 'funding'];
/** Accounts whose reservations count against their limit. */
const TRACKED_SQL = `'customer', 'merchant', 'held_deposit'`;
const SYSTEM_SQL = `'inter_operator', 'fx', 'funding'`;
function tracksPending(kind: AccountKind): boolean {
  return !SYSTEM_KINDS.includes(kind);
}

/**
 * Issue 13: how many shard rows a busy account's credits are spread over. Clearings of one
 * merchant wait for each other only when they pick the same shard.
 */
export const SHARDS = 16;

/** Whether a leg lands on a shard row: credits to merchants, anything of a system account. */
function onShard(kind: AccountKind, value: bigint): boolean {
  return SYSTEM_KINDS.includes(kind) || (kind === 'merchant' && value > 0n);
}

/** A shard (1…SHARDS) from the movement id: spread evenly, the same for a replay. FNV-1a. */
function shardOf(movementId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < movementId.length; i++) {
    h ^= movementId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 1 + (h % SHARDS);
}

export class Ledger {
  private readonly kinds = new Map<string, { kind: AccountKind; currency: string }>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Open an account. Opening the same account again (same kind, currency and limit) returns it
   * unchanged, so start-up seeding can run every time; anything else under that id is a CONFLICT.
   */
  async openAccount(spec: OpenAccount): Promise<Account> {
    return this.db.transaction((tx) => this.openAccountIn(tx, spec), READ_COMMITTED);
  }

  /** openAccount inside the caller's transaction. */
  async openAccountIn(tx: Queryable, spec: OpenAccount): Promise<Account> {
    checkId('account id', spec.id);
    if (!ACCOUNT_KINDS.includes(spec.kind)) throw new ObolError('MALFORMED', `unknown account kind: ${spec.kind}`);
    exponentOf(spec.currency); // refuses currencies Obol does not know
    const limit = spec.creditLimit === undefined ? DEFAULT_CREDIT_LIMIT[spec.kind] : spec.creditLimit;
    checkLimit(limit);
    if (limit !== null && SYSTEM_KINDS.includes(spec.kind)) {
      throw new ObolError('MALFORMED', `a ${spec.kind} account has no credit limit`);
    }
    const [created] = await tx.query<AccountRow>(
      `INSERT INTO accounts (id, kind, currency, credit_limit, balance, created_at)
       VALUES ($1, $2, $3, $4, 0, $5::timestamptz)
       ON CONFLICT (id) DO NOTHING RETURNING id, kind, currency, credit_limit, balance, debits_pending`,
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
   * openAccountIn for accounts the roles name on the way (an inter-operator or FX account, a
   * merchant's): nothing is written once this ledger has seen the account, so opening it costs a
   * statement only the first time.
   */
  async ensureAccountIn(tx: Queryable, spec: OpenAccount): Promise<void> {
    const known = this.kinds.get(spec.id);
    if (known && known.kind === spec.kind && known.currency === spec.currency && spec.creditLimit === undefined) return;
    await this.openAccountIn(tx, spec);
  }

  /**
   * Database refusals that are the caller's input, not a crash (the transaction rolls back). A
   * foreign key refusal means an account this process has in memory is not in the database: it was
   * opened by a transaction that then rolled back. Forget those accounts and have the whole
   * transaction run again (as after a serialization failure), so it opens them for real.
   */
  private mapWriteError(e: unknown, accountIds: string[]): never {
    const state = sqlState(e);
    // A balance is a 64-bit count of minor units; one that would leave that range is an amount error.
    if (state === '22003') throw new ObolError('INVALID_AMOUNT', 'an account cannot hold a balance that large');
    if (state === '23503') {
      for (const id of accountIds) this.kinds.delete(id);
      throw Object.assign(new Error('an account known to this process was rolled back with the transaction that opened it; run again'), {
        code: '40001',
        cause: e,
      });
    }
    throw e;
  }

  /**
   * Change how far an account may go below zero (null = no limit). A limit below what the account
   * already owes is refused: the database keeps every balance within its limit at all times.
   */
  async setCreditLimit(accountId: string, limit: bigint | null): Promise<Account> {
    checkLimit(limit);
    return this.db.transaction(
      async (tx) => {
        // The row alone (without its shards, which only ever add) must stay within the limit: the
        // CHECK on the row is the last line of defence.
        const [row] = await tx.query<{ id: string }>(
          `UPDATE accounts SET credit_limit = $2
           WHERE id = $1 AND kind NOT IN ('inter_operator', 'fx', 'funding')
             AND ($2::bigint IS NULL OR balance - debits_pending >= -$2::bigint)
           RETURNING id`,
          [accountId, limit],
        );
        if (row) return mustGetAccount(tx, accountId);
        const account = await mustGetAccount(tx, accountId);
        if (SYSTEM_KINDS.includes(account.kind)) throw new ObolError('MALFORMED', `a ${account.kind} account has no credit limit`);
        throw new ObolError(
          'INVALID_AMOUNT',
          `account ${accountId} owes or has reserved ${formatAmount({ currency: account.currency, value: account.debitsPending - account.balance })},` +
            ' more than the new credit limit',
        );
      },
      READ_COMMITTED,
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
    return this.db.transaction((tx) => this.transferIn(tx, movementId, kind, legs, memo), READ_COMMITTED);
  }

  /**
   * transfer inside the caller's transaction, so a movement commits together with the protocol
   * state it belongs to (a clearing and its billing records). The caller's transaction must be
   * read committed (see transfer).
   */
  async transferIn(tx: Queryable, movementId: string, kind: string, legs: Leg[], memo: Memo = {}): Promise<Movement> {
    checkId('movement id', movementId);
    checkKind(kind);
    checkLegs(legs);
    const memoJson = toJson(memo);
    const createdAt = this.clock.now();
    const booked = await this.book(tx, movementId, kind, memoJson, createdAt, legs);
    if (!booked) return replay(tx, movementId, kind, legs, memoJson);
    return { id: movementId, kind, memo: JSON.parse(memoJson) as Memo, legs, createdAt, replayed: false };
  }

  /**
   * The single-phase transfer the roles use: `amount` from one account to another, now, as one
   * movement (its id the idempotency key). The legs are the ledger's to build.
   */
  async payIn(tx: Queryable, spec: PaySpec): Promise<Movement> {
    checkPositive(spec.amount);
    const legs: Leg[] = [
      { account: spec.from, amount: { currency: spec.amount.currency, value: -spec.amount.value } },
      { account: spec.to, amount: spec.amount },
    ];
    return this.transferIn(tx, spec.id, spec.kind, legs, spec.memo ?? {});
  }

  /**
   * Fold a merchant's (or customer's) shard rows into its own row, in `tx`, so a debit of it sees
   * everything it holds: credits to busy accounts land on shard rows (issue 13) and a debit is
   * checked against the row alone. Nothing is booked (the entries are unchanged; row plus shards
   * is the same balance). The row is locked first (the ledger's lock order), then its shards.
   * `book` calls it for every debit of a merchant (rare against its many credits: a refund).
   */
  async collectShardsIn(tx: Queryable, accountId: string): Promise<void> {
    checkId('account', accountId);
    const [row] = await tx.query<{ kind: AccountKind }>('SELECT kind FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
    if (!row) throw new ObolError('UNKNOWN_KEY', `no account ${accountId}`);
    if (SYSTEM_KINDS.includes(row.kind)) throw new ObolError('MALFORMED', `a ${row.kind} account has no limit: nothing to collect`);
    await tx.query(
      `WITH d AS (DELETE FROM account_shards WHERE account_id = $1 RETURNING balance)
       UPDATE accounts SET balance = balance + COALESCE((SELECT SUM(balance) FROM d), 0) WHERE id = $1`,
      [accountId],
    );
  }

  /**
   * Reserve an amount on its debit account for a later post (TigerBeetle's pending transfer): the
   * debit account's limit counts it at once, so it cannot be spent twice, but nothing moves yet.
   * One statement. The same id with the same body is a replay; with another body a CONFLICT.
   */
  async reserve(spec: ReserveSpec): Promise<PendingTransfer> {
    return this.db.transaction((tx) => this.reserveIn(tx, spec), READ_COMMITTED);
  }

  async reserveIn(tx: Queryable, spec: ReserveSpec): Promise<PendingTransfer> {
    checkId('pending transfer id', spec.id);
    checkKind(spec.kind);
    checkId('debit account', spec.debit);
    checkId('credit account', spec.credit);
    if (spec.debit === spec.credit) throw new ObolError('MALFORMED', 'a pending transfer needs two different accounts');
    checkPositive(spec.amount);
    exponentOf(spec.amount.currency);
    if (spec.amount.value > MAX_INT8) throw new ObolError('INVALID_AMOUNT', 'the amount is too large');
    if (!Number.isSafeInteger(spec.expiresAt)) throw new ObolError('MALFORMED', 'a pending transfer needs a deadline (ms since the epoch)');
    const memoJson = toJson(spec.memo ?? {});
    const createdAt = this.clock.now();
    const kinds = await this.accountKinds(tx, [spec.debit, spec.credit]);
    for (const id of [spec.debit, spec.credit]) {
      const currency = kinds.get(id)!.currency;
      if (currency !== spec.amount.currency) {
        throw new ObolError('CURRENCY_MISMATCH', `account ${id} is in ${currency}, not ${spec.amount.currency}`);
      }
    }
    const tracked = tracksPending(kinds.get(spec.debit)!.kind);
    // The row and the debit account's promise in one statement: the UPDATE only runs when the
    // INSERT did (a replay changes nothing), and only when the account can afford it.
    const [result] = await tx
      .query<{ inserted: string | number; reserved: string | number }>(
        `WITH ins AS (
           INSERT INTO pending_transfers (id, kind, debit_account, credit_account, currency, amount, expires_at, state, memo, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8::text::jsonb, $9::timestamptz)
           ON CONFLICT (id) DO NOTHING RETURNING amount),
         upd AS (
           UPDATE accounts SET debits_pending = debits_pending + $6
           WHERE $10::boolean AND id = $3 AND currency = $5 AND EXISTS (SELECT 1 FROM ins)
             AND (credit_limit IS NULL OR balance - debits_pending - $6 >= -credit_limit)
           RETURNING id)
         SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS reserved`,
        [
          spec.id,
          spec.kind,
          spec.debit,
          spec.credit,
          spec.amount.currency,
          spec.amount.value,
          spec.expiresAt,
          memoJson,
          new Date(createdAt).toISOString(),
          tracked,
        ],
      )
      .catch((e: unknown) => this.mapWriteError(e, [spec.debit, spec.credit]));
    if (Number(result?.inserted) === 0) {
      const existing = await loadPending(tx, spec.id);
      if (!existing) throw new ObolError('INTERNAL', `pending transfer ${spec.id} vanished during replay`);
      const [same] = await tx.query<{ same: boolean }>('SELECT memo = $2::text::jsonb AS same FROM pending_transfers WHERE id = $1', [
        spec.id,
        memoJson,
      ]);
      if (
        existing.kind !== spec.kind ||
        existing.debitAccount !== spec.debit ||
        existing.creditAccount !== spec.credit ||
        existing.amount.currency !== spec.amount.currency ||
        existing.amount.value !== spec.amount.value ||
        existing.expiresAt !== spec.expiresAt ||
        !same?.same
      ) {
        throw new ObolError('CONFLICT', `pending transfer ${spec.id} was already reserved with a different body`);
      }
      return { ...existing, replayed: true };
    }
    if (tracked && Number(result?.reserved) === 0) {
      const account = await mustGetAccount(tx, spec.debit);
      if (account.currency !== spec.amount.currency) {
        throw new ObolError('CURRENCY_MISMATCH', `account ${spec.debit} is in ${account.currency}, not ${spec.amount.currency}`);
      }
      throw new ObolError('INSUFFICIENT_FUNDS', `account ${spec.debit} cannot reserve ${formatAmount(spec.amount)}`);
    }
    return {
      id: spec.id,
      kind: spec.kind,
      debitAccount: spec.debit,
      creditAccount: spec.credit,
      amount: spec.amount,
      expiresAt: spec.expiresAt,
      state: 'pending',
      posted: null,
      memo: JSON.parse(memoJson) as Memo,
      replayed: false,
    };
  }

  /**
   * Post a pending transfer, once: `amount` (default: all of it) moves from the debit to the credit
   * account as movement `post:<id>`, the rest stays with the debit account, and the reservation
   * ends. Posting again with the same amount is a replay; after a void, an expiry or a post of
   * another amount it is refused. Posting 0 ends the reservation and moves nothing.
   */
  async post(pendingId: string, amount?: Amount): Promise<PendingTransfer> {
    return this.db.transaction((tx) => this.postIn(tx, pendingId, amount), READ_COMMITTED);
  }

  async postIn(tx: Queryable, pendingId: string, amount?: Amount): Promise<PendingTransfer> {
    checkId('pending transfer id', pendingId);
    if (amount !== undefined && (typeof amount?.value !== 'bigint' || amount.value < 0n)) {
      throw new ObolError('INVALID_AMOUNT', 'a posted amount is zero or more');
    }
    const now = this.clock.now();
    const resolvedAt = new Date(now).toISOString();
    // One statement: claim the resolution (of two posts, or a post and a void, racing, one wins
    // here and the other finds the row resolved), book the movement `post:<id>` — the debit
    // account's reservation released, the credit on a shard row when the account is a busy one —
    // and write its entries. The deadline is checked on the row, not left to the sweep's timing.
    const [row] = await tx
      .query<PendingRow & { booked: string | number; applied: string | number; legs: string | number }>(
        `WITH p AS (
           UPDATE pending_transfers SET state = 'posted', posted_amount = COALESCE($2::bigint, amount), resolved_at = $3::timestamptz
           WHERE id = $1 AND state = 'pending' AND expires_at > $4 AND ($5::text IS NULL OR currency = $5)
             AND ($2::bigint IS NULL OR $2::bigint <= amount)
           RETURNING ${PENDING_COLUMNS}),
         m AS (
           INSERT INTO movements (id, kind, memo, created_at)
           SELECT 'post:' || p.id, 'post:' || p.kind, p.memo || jsonb_build_object('pendingId', p.id), $3::timestamptz FROM p
           RETURNING id),
         l AS (
           SELECT 0 AS leg, p.debit_account AS account, p.currency, -p.posted_amount AS amount,
                  a.kind IN (${SYSTEM_SQL}) AS on_shard, a.kind IN (${TRACKED_SQL}) AS tracked, p.amount AS reserved
           FROM p JOIN accounts a ON a.id = p.debit_account WHERE p.posted_amount > 0
           UNION ALL
           SELECT 1, p.credit_account, p.currency, p.posted_amount, a.kind IN (${SYSTEM_SQL}, 'merchant'), false, 0
           FROM p JOIN accounts a ON a.id = p.credit_account WHERE p.posted_amount > 0),
         own AS (
           UPDATE accounts a SET balance = a.balance + l.amount,
             debits_pending = a.debits_pending - CASE WHEN l.tracked THEN l.reserved ELSE 0 END
           FROM l, m WHERE NOT l.on_shard AND a.id = l.account AND a.currency = l.currency
           RETURNING a.id),
         rel AS (
           UPDATE accounts a SET debits_pending = a.debits_pending - p.amount FROM p, m
           WHERE p.posted_amount = 0 AND a.id = p.debit_account AND a.kind IN (${TRACKED_SQL})
           RETURNING a.id),
         sh AS (
           INSERT INTO account_shards (account_id, shard, balance)
           SELECT l.account, $6::integer, l.amount FROM l, m WHERE l.on_shard ORDER BY l.account
           ON CONFLICT (account_id, shard) DO UPDATE SET balance = account_shards.balance + EXCLUDED.balance
           RETURNING account_id),
         e AS (
           INSERT INTO entries (movement_id, leg, account_id, currency, amount, created_at)
           SELECT m.id, l.leg, l.account, l.currency, l.amount, $3::timestamptz FROM l, m
           RETURNING amount)
         SELECT p.*, (SELECT count(*) FROM m) AS booked, (SELECT count(*) FROM own) + (SELECT count(*) FROM sh) AS applied,
                (SELECT count(*) FROM l) AS legs, (SELECT count(*) FROM rel) AS released,
                (SELECT COALESCE(SUM(amount), 0) FROM e) AS entry_sum
         FROM p`,
        [pendingId, amount?.value ?? null, resolvedAt, now, amount?.currency ?? null, shardOf(`post:${pendingId}`)],
      )
      .catch((e: unknown) => this.mapWriteError(e, []));
    if (!row) return this.explainUnposted(tx, pendingId, amount, now);
    // A post is one debit and one credit of the same amount; what was written is checked anyway,
    // in the same transaction, so a bug can never commit an unbalanced or half-applied post.
    const written = row as unknown as { entry_sum: string | bigint };
    if (Number(row.booked) !== 1 || Number(row.applied) !== Number(row.legs) || toBigint(written.entry_sum) !== 0n) {
      throw new ObolError('INTERNAL', `posting ${pendingId} was written incompletely; rolled back`);
    }
    return toPending(row);
  }

  /** Void a pending transfer, once: the reservation ends and nothing moves. */
  async void(pendingId: string): Promise<PendingTransfer> {
    return this.db.transaction((tx) => this.voidIn(tx, pendingId), READ_COMMITTED);
  }

  async voidIn(tx: Queryable, pendingId: string, state: 'voided' | 'expired' = 'voided'): Promise<PendingTransfer> {
    checkId('pending transfer id', pendingId);
    const now = this.clock.now();
    // One statement: the row's resolution and the debit account's promise released together.
    const [row] = await tx.query<PendingRow>(
      `WITH p AS (
         UPDATE pending_transfers SET state = $2, resolved_at = $3::timestamptz
         WHERE id = $1 AND state = 'pending' RETURNING ${PENDING_COLUMNS}),
       rel AS (
         UPDATE accounts a SET debits_pending = a.debits_pending - p.amount FROM p
         WHERE a.id = p.debit_account AND a.kind IN (${TRACKED_SQL}) RETURNING a.id)
       SELECT p.*, (SELECT count(*) FROM rel) AS released FROM p`,
      [pendingId, state, new Date(now).toISOString()],
    );
    if (row) return toPending(row);
    const existing = await loadPending(tx, pendingId);
    if (!existing) throw new ObolError('UNKNOWN_TRANSACTION', `no pending transfer ${pendingId}`);
    if (existing.state === state || (state === 'voided' && existing.state === 'expired')) return { ...existing, replayed: true };
    throw new ObolError('SESSION_CLOSED', `pending transfer ${pendingId} was already ${existing.state}`);
  }

  /**
   * Void every pending transfer whose deadline has passed (state 'expired'), each in its own
   * transaction so one that cannot be voided holds up no other. Returns how many it expired.
   */
  async expireDue(limit = 500): Promise<number> {
    const due = await this.db.query<{ id: string }>(
      `SELECT id FROM pending_transfers WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT ${Math.max(1, Math.floor(limit))}`,
      [this.clock.now()],
    );
    let expired = 0;
    for (const { id } of due) {
      const p = await this.db.transaction((tx) => this.voidIn(tx, id, 'expired'), READ_COMMITTED);
      if (!p.replayed) expired++;
    }
    return expired;
  }

  /** A pending transfer in whatever state it is, or undefined. */
  async pending(pendingId: string): Promise<PendingTransfer | undefined> {
    return loadPending(this.db, pendingId);
  }

  /** Why a post did not claim its transfer: a replay of the same post, or a refusal. */
  private async explainUnposted(tx: Queryable, pendingId: string, amount: Amount | undefined, now: number): Promise<PendingTransfer> {
    const existing = await loadPending(tx, pendingId);
    if (!existing) throw new ObolError('UNKNOWN_TRANSACTION', `no pending transfer ${pendingId}`);
    if (amount !== undefined && amount.currency !== existing.amount.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `pending transfer ${pendingId} is in ${existing.amount.currency}`);
    }
    if (existing.state === 'posted') {
      if (amount === undefined || existing.posted?.value === amount.value) return { ...existing, replayed: true };
      throw new ObolError('CONFLICT', `pending transfer ${pendingId} was already posted with ${formatAmount(existing.posted!)}`);
    }
    if (existing.state === 'pending' && existing.expiresAt <= now) {
      throw new ObolError('SESSION_CLOSED', `pending transfer ${pendingId} passed its deadline and can no longer be posted`);
    }
    if (existing.state === 'pending') {
      throw new ObolError('AMOUNT_EXCEEDS_SIGNED', `pending transfer ${pendingId} reserved only ${formatAmount(existing.amount)}`);
    }
    throw new ObolError('SESSION_CLOSED', `pending transfer ${pendingId} was ${existing.state}`);
  }

  /**
   * Book a movement in one statement: the movement row (its id the idempotency key), every leg's
   * balance change — on the account's row with its limit check, or on a shard row for credits to
   * busy accounts (issue 13) — and the entries. Returns false when the movement id was booked before (nothing changed). The entries
   * written come back and are summed per currency here, in the same transaction: a bug between the
   * checks in code and the SQL can never commit an unbalanced movement.
   */
  private async book(
    tx: Queryable,
    movementId: string,
    kind: string,
    memoJson: string,
    createdAt: number,
    legs: Leg[],
  ): Promise<boolean> {
    const kinds = await this.accountKinds(
      tx,
      legs.map((l) => l.account),
    );
    for (const leg of legs) {
      const currency = kinds.get(leg.account)!.currency;
      if (currency !== leg.amount.currency) {
        throw new ObolError('CURRENCY_MISMATCH', `account ${leg.account} is in ${currency}, not ${leg.amount.currency}`);
      }
    }
    // A debit of a merchant sees all it holds: its credits landed on shard rows (issue 13) and the
    // limit is checked on its row, so they are collected into the row first. Rare (a refund out
    // of a merchant's account); customers' and system accounts' debits never need it.
    for (const leg of legs) {
      if (leg.amount.value < 0n && kinds.get(leg.account)!.kind === 'merchant') await this.collectShardsIn(tx, leg.account);
    }
    const shard = shardOf(movementId);
    // One global lock order (account, then shard) so two movements over the same rows wait for
    // each other instead of deadlocking.
    const placed = legs
      .map((leg, i) => ({ leg, i, shard: onShard(kinds.get(leg.account)!.kind, leg.amount.value) ? shard : 0 }))
      .sort((a, b) => (a.leg.account < b.leg.account ? -1 : a.leg.account > b.leg.account ? 1 : a.shard - b.shard));
    const ts = new Date(createdAt).toISOString();
    const params: unknown[] = [movementId, kind, memoJson, ts];
    const values = placed.map(({ leg, i, shard: s }) => {
      params.push(i, leg.account, leg.amount.currency, leg.amount.value, s);
      const p = params.length;
      return `($${p - 4}::integer, $${p - 3}::text, $${p - 2}::text, $${p - 1}::bigint, $${p}::integer)`;
    });
    const legsSql = values.length > 0 ? `SELECT * FROM (VALUES ${values.join(', ')}) AS v (leg, account, currency, amount, shard)` : 'SELECT NULL::integer AS leg, NULL::text AS account, NULL::text AS currency, NULL::bigint AS amount, NULL::integer AS shard WHERE false';
    const [r] = await tx
      .query<{ booked: string | number; applied: string | number; own: string[] | null; unbalanced: string | number }>(
        `WITH m AS (
           INSERT INTO movements (id, kind, memo, created_at) VALUES ($1, $2, $3::text::jsonb, $4::timestamptz)
           ON CONFLICT (id) DO NOTHING RETURNING id),
         l AS (${legsSql}),
         own AS (
           UPDATE accounts a SET balance = a.balance + l.amount
           FROM l, m
           WHERE l.shard = 0 AND a.id = l.account AND a.currency = l.currency
             AND (a.credit_limit IS NULL OR a.balance - a.debits_pending + l.amount >= -a.credit_limit)
           RETURNING a.id),
         sh AS (
           INSERT INTO account_shards (account_id, shard, balance)
           SELECT l.account, l.shard, l.amount FROM l, m WHERE l.shard > 0 ORDER BY l.account, l.shard
           ON CONFLICT (account_id, shard) DO UPDATE SET balance = account_shards.balance + EXCLUDED.balance
           RETURNING account_id),
         e AS (
           INSERT INTO entries (movement_id, leg, account_id, currency, amount, created_at)
           SELECT m.id, l.leg, l.account, l.currency, l.amount, $4::timestamptz FROM l, m
           RETURNING currency, amount)
         SELECT (SELECT count(*) FROM m) AS booked,
                (SELECT count(*) FROM own) + (SELECT count(*) FROM sh) AS applied,
                (SELECT array_agg(id) FROM own) AS own,
                (SELECT count(*) FROM (SELECT currency FROM e GROUP BY currency HAVING SUM(amount) <> 0) u) AS unbalanced`,
        params,
      )
      .catch((e: unknown) =>
        this.mapWriteError(
          e,
          legs.map((l) => l.account),
        ),
      );
    if (!r || Number(r.booked) === 0) return false;
    if (Number(r.unbalanced) > 0) throw new ObolError('INTERNAL', `movement ${movementId} was written unbalanced; rolled back`);
    if (Number(r.applied) < legs.length) {
      // Only legs on an account's own row can be refused; those applied already must not be blamed.
      const applied = new Set(r.own ?? []);
      await explainRefusedLegs(
        tx,
        placed.filter((p) => p.shard === 0 && !applied.has(p.leg.account)).map((p) => p.leg),
      );
    }
    return true;
  }

  /** Kind and currency of accounts, from memory once read: neither ever changes for an account id. */
  private async accountKinds(tx: Queryable, ids: string[]): Promise<Map<string, { kind: AccountKind; currency: string }>> {
    const missing = ids.filter((id) => !this.kinds.has(id));
    if (missing.length > 0) {
      const rows = await tx.query<{ id: string; kind: AccountKind; currency: string }>(
        'SELECT id, kind, currency FROM accounts WHERE id = ANY($1::text[])',
        [missing],
      );
      for (const r of rows) this.kinds.set(r.id, { kind: r.kind, currency: r.currency });
    }
    const out = new Map<string, { kind: AccountKind; currency: string }>();
    for (const id of ids) {
      const k = this.kinds.get(id);
      if (!k) throw new ObolError('MALFORMED', `no such account: ${id}`);
      out.set(id, k);
    }
    return out;
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
   * movement, every stored balance (row and shards) is the sum of its entries, every reserved amount
   * is the sum of the account's pending transfers, and no account is below its limit counting what
   * it has reserved. The one place these rules are checked; tests call it after every step.
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
            `SELECT a.id, a.balance + COALESCE(s.total, 0) AS balance, COALESCE(e.total, 0) AS from_entries
             FROM accounts a
             LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM entries GROUP BY account_id) e ON e.account_id = a.id
             LEFT JOIN (SELECT account_id, SUM(balance) AS total FROM account_shards GROUP BY account_id) s ON s.account_id = a.id
             WHERE a.balance + COALESCE(s.total, 0) <> COALESCE(e.total, 0)
             ORDER BY a.id`,
          )
        ).map((r) => ({ account: r.id, stored: toBigint(r.balance), fromEntries: toBigint(r.from_entries) }));

        // The limit on the whole account (row and shards), and on the row alone (the CHECK's rule).
        const underLimit = (
          await tx.query<AccountRow>(
            `SELECT ${ACCOUNT_COLUMNS} FROM accounts a
             WHERE a.credit_limit IS NOT NULL AND (a.balance - a.debits_pending < -a.credit_limit
               OR a.balance + COALESCE((SELECT SUM(s.balance) FROM account_shards s WHERE s.account_id = a.id), 0)
                  - a.debits_pending < -a.credit_limit)
             ORDER BY a.id`,
          )
        ).map(toAccount);

        const pendingMismatches = (
          await tx.query<{ id: string; debits_pending: bigint; from_pending: string }>(
            `SELECT a.id, a.debits_pending, COALESCE(p.total, 0) AS from_pending
             FROM accounts a
             LEFT JOIN (SELECT debit_account, SUM(amount) AS total FROM pending_transfers WHERE state = 'pending'
                        GROUP BY debit_account) p ON p.debit_account = a.id
             WHERE a.debits_pending <> CASE WHEN a.kind IN (${TRACKED_SQL}) THEN COALESCE(p.total, 0) ELSE 0 END
             ORDER BY a.id`,
          )
        ).map((r) => ({ account: r.id, stored: toBigint(r.debits_pending), fromPending: toBigint(r.from_pending) }));

        const ok =
          perCurrency.every((c) => c.sum === 0n) &&
          unbalancedMovements.length === 0 &&
          balanceMismatches.length === 0 &&
          underLimit.length === 0 &&
          pendingMismatches.length === 0;
        return { ok, perCurrency, underLimit, balanceMismatches, unbalancedMovements, pendingMismatches };
      },
      { isolation: 'repeatable read' },
    );
  }

  private timestamp(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

/** Why a movement's legs were not all applied: the right catalogue error for the first refused leg. */
async function explainRefusedLegs(tx: Queryable, legs: Leg[]): Promise<never> {
  for (const leg of legs) {
    const account = await mustGetAccount(tx, leg.account);
    if (account.currency !== leg.amount.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `account ${leg.account} is in ${account.currency}, not ${leg.amount.currency}`);
    }
    if (account.creditLimit !== null && account.balance - account.debitsPending + leg.amount.value < -account.creditLimit) {
      throw new ObolError('INSUFFICIENT_FUNDS', `account ${leg.account} cannot pay ${formatAmount({ currency: leg.amount.currency, value: -leg.amount.value })}`);
    }
  }
  throw new ObolError('INTERNAL', 'a movement was refused by the database for no reason the ledger can name');
}

interface PendingRow {
  id: string;
  kind: string;
  debit_account: string;
  credit_account: string;
  currency: string;
  amount: bigint | string;
  expires_at: bigint | string;
  state: PendingState;
  posted_amount: bigint | string | null;
  memo: Memo;
}

const PENDING_COLUMNS = 'id, kind, debit_account, credit_account, currency, amount, expires_at, state, posted_amount, memo';

function toPending(r: PendingRow): PendingTransfer {
  return {
    id: r.id,
    kind: r.kind,
    debitAccount: r.debit_account,
    creditAccount: r.credit_account,
    amount: { currency: r.currency, value: toBigint(r.amount) },
    expiresAt: Number(r.expires_at),
    state: r.state,
    posted: r.posted_amount === null ? null : { currency: r.currency, value: toBigint(r.posted_amount) },
    memo: r.memo,
    replayed: false,
  };
}

async function loadPending(q: Queryable, id: string): Promise<PendingTransfer | undefined> {
  const [row] = await q.query<PendingRow>(`SELECT ${PENDING_COLUMNS} FROM pending_transfers WHERE id = $1`, [id]);
  return row ? toPending(row) : undefined;
}

function checkKind(kind: unknown): void {
  if (typeof kind !== 'string' || kind === '' || kind.length > 64) {
    throw new ObolError('MALFORMED', 'a movement needs a kind (1 to 64 characters)');
  }
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
  const [row] = await q.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1`, [id]);
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
    debitsPending: toBigint(row.debits_pending),
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
