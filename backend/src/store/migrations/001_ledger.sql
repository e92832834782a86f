-- The operator's double-entry ledger (DESIGN.md "Money"). Amounts are bigint minor units of the
-- row's currency. Kept to SQL that PostgreSQL, PGlite, CockroachDB and YugabyteDB all run: plain
-- tables, CHECK and FOREIGN KEY constraints, no triggers, no sequences (hot spots on distributed
-- engines), no advisory locks.

CREATE TABLE accounts (
  id           text        PRIMARY KEY,
  kind         text        NOT NULL
               CHECK (kind IN ('customer', 'merchant', 'held_deposit', 'inter_operator', 'fx', 'funding')),
  currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- How far below zero the balance may go; NULL = no limit (system accounts such as funding or fx).
  credit_limit bigint      CHECK (credit_limit IS NULL OR credit_limit >= 0),
  -- The sum of this account's entries, kept here so the limit check is one row update.
  balance      bigint      NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL,
  -- The last line of defence: whatever code runs, no committed balance is below its limit.
  CONSTRAINT accounts_within_limit CHECK (credit_limit IS NULL OR balance >= -credit_limit),
  -- Target of the entries' foreign key, so an entry can only be in its account's currency.
  CONSTRAINT accounts_id_currency UNIQUE (id, currency)
);

-- One movement of money; its id is the caller's idempotency key (a replay finds it here).
CREATE TABLE movements (
  id         text        PRIMARY KEY CHECK (id <> ''),
  kind       text        NOT NULL CHECK (kind <> ''),
  memo       jsonb       NOT NULL,
  created_at timestamptz NOT NULL
);

-- The legs of a movement. The key is (movement, leg number): it follows from the idempotency key,
-- so no sequence is needed. The legs of a movement sum to zero per currency; the ledger checks that
-- before and after writing them, and audit() checks it over the whole table.
CREATE TABLE entries (
  movement_id text        NOT NULL REFERENCES movements (id),
  leg         integer     NOT NULL CHECK (leg >= 0),
  account_id  text        NOT NULL,
  currency    text        NOT NULL,
  amount      bigint      NOT NULL CHECK (amount <> 0),
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (movement_id, leg),
  CONSTRAINT entries_account_currency FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency)
);

CREATE INDEX entries_by_account ON entries (account_id);
