-- FIG 4 disputes: the acquirer is the trusted party that relayed K1 (the wallet's secure-delivery
-- key) to the merchant at initiation; it keeps it with the transaction so that an arbiter the
-- operator trusts can obtain it later (POST /v1/arbiter/key, a request signed by the arbiter).
-- Rows from before this migration have none.
ALTER TABLE acq_transactions ADD COLUMN k1 text;

-- Every K1 released to an arbiter: who asked, for which transaction, when. A request id is
-- honoured once.
CREATE TABLE arbiter_requests (
  msg_id         text   PRIMARY KEY,
  arbiter        text   NOT NULL,
  transaction_id text   NOT NULL,
  case_ref       text   NOT NULL,
  created_at     bigint NOT NULL
);
