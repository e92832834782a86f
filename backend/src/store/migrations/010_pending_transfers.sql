-- Issue 12 item 4 and issue 13: the ledger speaks the protocol's verbs. A deposit is no longer
-- money moved into an account of its own (`held:<tid>`, `acq-held:<tid>`, two new accounts per
-- purchase session) but a PENDING TRANSFER, after TigerBeetle's two-phase transfers: an amount
-- reserved on its debit account with a deadline, later posted (in full or in part; the rest stays
-- with the debit account) or voided, exactly once. Same SQL on PostgreSQL, PGlite, CockroachDB and
-- YugabyteDB: no triggers, no sequences, no advisory locks.

-- What an account has promised to pending transfers. The limit counts it: money reserved for a
-- deposit cannot be spent twice, while it stays in the account's balance until posted.
ALTER TABLE accounts ADD COLUMN debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0);
ALTER TABLE accounts DROP CONSTRAINT accounts_within_limit;
ALTER TABLE accounts ADD CONSTRAINT accounts_within_limit CHECK (credit_limit IS NULL OR balance - debits_pending >= -credit_limit);

-- Issue 13, hot rows: every clearing of a merchant credits that merchant's account and the
-- inter-operator account. One row each would make all clearings wait for each other's commit; so
-- credits to those accounts (and any movement of the operator's own unlimited accounts) go to one
-- of a few shard rows, picked by the movement id. An account's balance is its row's balance plus
-- its shards'. Shards only ever receive what cannot break a limit (credits, or movements of
-- accounts without one), so the limit check stays on the account's own row.
CREATE TABLE account_shards (
  account_id text    NOT NULL REFERENCES accounts (id),
  shard      integer NOT NULL CHECK (shard >= 1 AND shard <= 256),
  balance    bigint  NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, shard)
);

CREATE TABLE pending_transfers (
  -- The caller's idempotency key: reserving the same id again with the same body is a replay.
  id             text        PRIMARY KEY CHECK (id <> ''),
  kind           text        NOT NULL CHECK (kind <> ''),
  debit_account  text        NOT NULL,
  credit_account text        NOT NULL,
  currency       text        NOT NULL,
  amount         bigint      NOT NULL CHECK (amount > 0),
  -- Milliseconds since the epoch: after it the transfer can no longer be posted and is voided by
  -- the expiry sweep (state 'expired').
  expires_at     bigint      NOT NULL,
  state          text        NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
  -- What was posted (0 ≤ posted ≤ amount); the rest went back to the debit account.
  posted_amount  bigint      CHECK (posted_amount IS NULL OR (posted_amount >= 0 AND posted_amount <= amount)),
  memo           jsonb       NOT NULL,
  created_at     timestamptz NOT NULL,
  resolved_at    timestamptz,
  CONSTRAINT pending_two_accounts CHECK (debit_account <> credit_account),
  CONSTRAINT pending_resolved CHECK ((state = 'pending') = (resolved_at IS NULL)),
  CONSTRAINT pending_debit_currency FOREIGN KEY (debit_account, currency) REFERENCES accounts (id, currency),
  CONSTRAINT pending_credit_currency FOREIGN KEY (credit_account, currency) REFERENCES accounts (id, currency)
);
CREATE INDEX pending_transfers_due ON pending_transfers (expires_at) WHERE state = 'pending';

-- Operators' existing deposits. A held account with money in it belongs to a transaction not yet
-- cleared: its money goes back to where it came from (one movement per account, balanced) and the
-- same amount becomes a pending transfer from there, so nothing anyone can spend changes.
-- Customer side: customer → the inter-operator account of the merchant's operator (same currency)
-- or the FX account (the merchant is paid in another currency), as the new code reserves.
INSERT INTO accounts (id, kind, currency, credit_limit, balance, created_at)
SELECT DISTINCT
  CASE WHEN split_part(t.deposit_customer, ':', 1) = split_part(t.deposit_merchant, ':', 1)
       THEN 'peer:' || t.merchant_operator || ':' || a.currency ELSE 'fx:' || a.currency END,
  CASE WHEN split_part(t.deposit_customer, ':', 1) = split_part(t.deposit_merchant, ':', 1) THEN 'inter_operator' ELSE 'fx' END,
  a.currency, NULL::bigint, 0::bigint, now()
FROM accounts a JOIN am_transactions t ON a.id = 'held:' || t.id
WHERE a.kind = 'held_deposit' AND a.balance <> 0
ON CONFLICT (id) DO NOTHING;

INSERT INTO accounts (id, kind, currency, credit_limit, balance, created_at)
SELECT DISTINCT 'peer:' || t.customer_operator || ':' || a.currency, 'inter_operator', a.currency, NULL::bigint, 0::bigint, now()
FROM accounts a JOIN acq_transactions t ON a.id = 'acq-held:' || t.id
WHERE a.kind = 'held_deposit' AND a.balance <> 0
ON CONFLICT (id) DO NOTHING;

-- A plain table (dropped below): temporary tables are not portable to the distributed engines.
CREATE TABLE migrating_deposits AS
SELECT a.id AS held_account, a.currency, a.balance AS amount, 'deposit:' || t.id AS pending_id, t.id AS transaction_id,
       'customer:' || t.customer_id AS debit_account,
       CASE WHEN split_part(t.deposit_customer, ':', 1) = split_part(t.deposit_merchant, ':', 1)
            THEN 'peer:' || t.merchant_operator || ':' || a.currency ELSE 'fx:' || a.currency END AS credit_account,
       'deposit' AS kind, true AS tracked,
       -- Seven days past the session's timer, as the account manager now reserves.
       t.expires_at + 604800000 AS expires_at
FROM accounts a JOIN am_transactions t ON a.id = 'held:' || t.id
WHERE a.kind = 'held_deposit' AND a.balance > 0
UNION ALL
SELECT a.id, a.currency, a.balance, 'acq-deposit:' || t.id, t.id,
       'peer:' || t.customer_operator || ':' || a.currency,
       'merchant:' || t.merchant_id,
       'acquirer-deposit', false,
       t.deadline_at + 604800000
FROM accounts a JOIN acq_transactions t ON a.id = 'acq-held:' || t.id
WHERE a.kind = 'held_deposit' AND a.balance > 0;

INSERT INTO movements (id, kind, memo, created_at)
SELECT 'migrate:' || held_account, 'migrate-deposit', jsonb_build_object('transactionId', transaction_id, 'pendingId', pending_id), now()
FROM migrating_deposits;

INSERT INTO entries (movement_id, leg, account_id, currency, amount, created_at)
SELECT 'migrate:' || held_account, 0, held_account, currency, -amount, now() FROM migrating_deposits
UNION ALL
SELECT 'migrate:' || held_account, 1, debit_account, currency, amount, now() FROM migrating_deposits;

UPDATE accounts a SET balance = 0 FROM migrating_deposits d WHERE a.id = d.held_account;
-- Customers' reservations count against their limit; the inter-operator account has none.
UPDATE accounts a SET balance = a.balance + s.amount, debits_pending = a.debits_pending + s.pending
FROM (SELECT debit_account, SUM(amount) AS amount, SUM(CASE WHEN tracked THEN amount ELSE 0 END) AS pending
      FROM migrating_deposits GROUP BY debit_account) s
WHERE a.id = s.debit_account;

INSERT INTO pending_transfers (id, kind, debit_account, credit_account, currency, amount, expires_at, state, memo, created_at)
SELECT pending_id, kind, debit_account, credit_account, currency, amount, expires_at, 'pending',
       jsonb_build_object('transactionId', transaction_id), now()
FROM migrating_deposits;

DROP TABLE migrating_deposits;
