-- The merchant agent's own database (DESIGN.md "Purchases inside a trading session", FIG 2 steps
-- 4–5, FIG 3 step 9). A merchant keeps its own database, separate from any operator's: this file
-- is version 1 of *that* database's schema_migrations, so never apply it to an operator database.
-- Amounts are bigint minor units of the merchant's one currency; times are bigint milliseconds
-- read from the injected clock (never now()), so tests can move time. Same SQL on PGlite,
-- PostgreSQL, CockroachDB and YugabyteDB: no triggers, no sequences, no advisory locks.

-- One trading session (one TransactionIdentity) opened by the acquirer's information message.
CREATE TABLE merchant_sessions (
  transaction_id text    PRIMARY KEY,
  -- The acquirer.info msgId: a replayed info gets the same signed ack back.
  info_msg_id    text    NOT NULL UNIQUE,
  -- The operator-signed acquirer.info as received, and our signed merchant.ack.
  info           jsonb   NOT NULL,
  ack            jsonb   NOT NULL,
  pseudonym      text    NOT NULL,
  currency       text    NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  deposit        bigint  NOT NULL CHECK (deposit >= 0),
  -- Cumulative total of the accepted purchases = the latest accept's cumulative.
  spent          bigint  NOT NULL DEFAULT 0 CHECK (spent >= 0 AND spent <= deposit),
  -- Number of accepted purchases; the next order must carry n = count + 1.
  count          integer NOT NULL DEFAULT 0 CHECK (count >= 0),
  -- The wallet's session public key (SPKI base64url, from the re-issued temporary certificate) and its key id.
  session_key    text    NOT NULL,
  session_kid    text    NOT NULL,
  -- The secure-delivery key K1 as relayed by the trusted party (FIG 4). Never shown on any page.
  k1             text    NOT NULL,
  expires_at     bigint  NOT NULL,
  -- Salt of the purchase-list hash, fixed by the first order.
  list_salt      text,
  -- The latest wallet.accept (the merchant's proof at clearing), as signed by the wallet.
  latest_accept  jsonb,
  -- open → closing (record stored, not yet acknowledged) → reported (operator answered 2xx)
  --      → cleared (the operator's answer carried a verified clearing)
  state          text    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closing', 'reported', 'cleared')),
  close_reason   text    CHECK (close_reason IN ('wallet', 'merchant', 'deposit-used', 'timer')),
  opened_at      bigint  NOT NULL,
  closed_at      bigint,
  CHECK ((state = 'open') = (close_reason IS NULL))
);

-- The timer's question, "which open sessions have run out?", reads only open sessions.
CREATE INDEX merchant_sessions_expiry ON merchant_sessions (expires_at) WHERE state = 'open';

-- Purchases: a row per delivered order n; it becomes a purchase line once accepted. An order not
-- (yet) accepted is never charged and may be replaced by another order with the same n.
CREATE TABLE merchant_orders (
  transaction_id text    NOT NULL REFERENCES merchant_sessions (transaction_id),
  n              integer NOT NULL CHECK (n >= 1),
  product_id     text    NOT NULL,
  -- The price exactly as ordered (canonical wire form) and in minor units.
  price          text    NOT NULL,
  amount         bigint  NOT NULL CHECK (amount >= 0),
  order_msg      jsonb   NOT NULL,
  -- SHA-256 (base64url) of the content delivered for this order: the accept must name it.
  content_hash   text    NOT NULL,
  ordered_at     bigint  NOT NULL,
  -- Filled together when the wallet's accept is recorded.
  accept_id      text,
  accept_msg     jsonb,
  cumulative     bigint  CHECK (cumulative >= 0),
  accepted_at    bigint,
  PRIMARY KEY (transaction_id, n),
  -- An accept counts once however often it is replayed.
  UNIQUE (transaction_id, accept_id),
  CHECK ((accept_id IS NULL) = (accept_msg IS NULL) AND (accept_id IS NULL) = (cumulative IS NULL))
);

-- FIG 3 step 9: the signed merchant record, stored in the transaction that closes the session and
-- then sent to the acquirer until it answers 2xx (at least once; the acquirer deduplicates on msg_id).
CREATE TABLE merchant_records (
  msg_id          text    PRIMARY KEY,
  transaction_id  text    NOT NULL UNIQUE REFERENCES merchant_sessions (transaction_id),
  -- Signed<'merchant.record'>, sent as is on every attempt.
  record          jsonb   NOT NULL,
  created_at      bigint  NOT NULL,
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at bigint  NOT NULL,
  sent_at         bigint,
  last_error      text,
  -- The acquirer's RecordResponse, its state, and a verified clearing if it carried one.
  response        jsonb,
  operator_state  text,
  clearing        jsonb
);

CREATE INDEX merchant_records_due ON merchant_records (next_attempt_at) WHERE sent_at IS NULL;
