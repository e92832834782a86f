-- Issue 14 item 2: refunds after clearing. The acquirer keeps each merchant's refund by the
-- merchant's refund id (the same id is the same refund: answered once, money moved once) and
-- numbers the refunds of a transaction 1, 2, …; `refunded` on the transaction is their running
-- total in minor units, raised by a guarded UPDATE so that no two refunds together exceed what
-- the merchant was paid. The customer's account manager keeps each refund it credited by
-- (transaction, n), so a re-delivery credits nothing twice.
ALTER TABLE acq_transactions ADD COLUMN refunded bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0);
ALTER TABLE acq_transactions ADD COLUMN refund_count integer NOT NULL DEFAULT 0 CHECK (refund_count >= 0);

CREATE TABLE acq_refunds (
  merchant_id     text    NOT NULL,
  refund_id       text    NOT NULL,
  transaction_id  text    NOT NULL REFERENCES acq_transactions (id),
  n               integer NOT NULL CHECK (n >= 1),
  amount          text    NOT NULL,
  -- What the merchant signed (to tell a resend from another refund under the same id) and our answer.
  request_digest  text    NOT NULL,
  refund          jsonb   NOT NULL,
  created_at      bigint  NOT NULL,
  PRIMARY KEY (merchant_id, refund_id),
  UNIQUE (transaction_id, n)
);

CREATE TABLE am_refunds (
  transaction_id  text    NOT NULL REFERENCES am_transactions (id),
  n               integer NOT NULL CHECK (n >= 1),
  customer_id     text    NOT NULL,
  amount          text    NOT NULL,
  amount_merchant text    NOT NULL,
  refund          jsonb   NOT NULL,
  created_at      bigint  NOT NULL,
  PRIMARY KEY (transaction_id, n)
);
CREATE INDEX am_refunds_customer ON am_refunds (customer_id, created_at);
