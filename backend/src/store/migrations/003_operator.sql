-- The operator's protocol state: customers, merchants, logon sessions, the transactions it
-- manages as account manager (customer side) and as acquirer (merchant side), its published
-- exchange tables, and the responses it gave to each message id (idempotency).

CREATE TABLE customers (
  id          text   PRIMARY KEY,            -- key id of the wallet's long-term key
  public_key  text   NOT NULL,               -- SPKI DER, base64url
  cert        text   NOT NULL,
  display_name text,
  created_at  bigint NOT NULL
);

CREATE TABLE merchants (
  id          text   PRIMARY KEY,
  public_key  text   NOT NULL,
  key_id      text   NOT NULL UNIQUE,
  origins     jsonb  NOT NULL,
  url         text   NOT NULL,
  name        text   NOT NULL,
  cert        text   NOT NULL,
  created_at  bigint NOT NULL
);

CREATE TABLE login_challenges (
  challenge   text   PRIMARY KEY,
  customer_id text   NOT NULL REFERENCES customers (id),
  expires_at  bigint NOT NULL,
  used        boolean NOT NULL DEFAULT false
);

-- Sequence numbers without SQL sequences (hot spots on distributed engines): a counter row
-- per name, bumped with UPDATE … RETURNING inside the transaction that uses the number.
CREATE TABLE counters (
  name  text   PRIMARY KEY,
  value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('session', 0);

CREATE TABLE sessions (
  id          text   PRIMARY KEY,             -- SessionIdentity
  customer_id text   NOT NULL REFERENCES customers (id),
  token_hash  text   NOT NULL UNIQUE,
  expires_at  bigint NOT NULL,
  next_tx     bigint NOT NULL DEFAULT 0,
  created_at  bigint NOT NULL
);

CREATE TABLE exchange_tables (
  issued_at  bigint PRIMARY KEY,
  expires_at bigint NOT NULL,
  signed     jsonb  NOT NULL
);

-- Account manager side: one row per deposit a customer of ours opened (FIG 2 step 3).
CREATE TABLE am_transactions (
  id                  text   PRIMARY KEY,     -- TransactionIdentity
  initiate_msg_id     text   NOT NULL UNIQUE,
  session_id          text   NOT NULL REFERENCES sessions (id),
  customer_id         text   NOT NULL REFERENCES customers (id),
  merchant_id         text   NOT NULL,
  merchant_operator   text   NOT NULL,
  pseudonym           text   NOT NULL,
  session_public_key  text   NOT NULL,
  deposit_customer    text   NOT NULL,        -- money on the wire form "SEK:20.00"
  deposit_merchant    text   NOT NULL,
  rate                text   NOT NULL,
  expires_at          bigint NOT NULL,
  state               text   NOT NULL CHECK (state IN ('pending', 'open', 'reported', 'cleared', 'failed')),
  customer_record     jsonb,
  clearing            jsonb,
  charged_customer    text,
  refund_customer     text,
  created_at          bigint NOT NULL
);

-- Acquirer side: one row per deposit opened at one of our merchants (FIG 2 step 4, FIG 3).
CREATE TABLE acq_transactions (
  id                  text   PRIMARY KEY,
  customer_operator   text   NOT NULL,
  merchant_id         text   NOT NULL REFERENCES merchants (id),
  pseudonym           text   NOT NULL,
  session_public_key  text   NOT NULL,
  deposit             text   NOT NULL,        -- merchant currency
  expires_at          bigint NOT NULL,
  deadline_at         bigint NOT NULL,        -- when a side that never reported is settled without it
  state               text   NOT NULL CHECK (state IN ('open', 'cleared', 'failed')),
  customer_record     jsonb,
  merchant_record     jsonb,
  clearing            jsonb,
  clearing_sent       boolean NOT NULL DEFAULT false,
  created_at          bigint NOT NULL
);
CREATE INDEX acq_transactions_open ON acq_transactions (state, deadline_at);

-- The answer given to each message id, so a replayed message gets the same answer and no
-- second effect.
CREATE TABLE handled_messages (
  msg_id     text   PRIMARY KEY,
  type       text   NOT NULL,
  digest     text   NOT NULL,                 -- sha256 of the canonical message: same id, other body → CONFLICT
  response   jsonb  NOT NULL,
  created_at bigint NOT NULL
);
