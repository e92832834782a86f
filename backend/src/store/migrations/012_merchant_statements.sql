-- Issue 15 item 4: a merchant reads its own statement from its operator (`obol merchant status |
-- sessions | payouts`) with a `merchant.statement` signed by its registered key, fresh
-- (STATEMENT_WINDOW_MS) and used once. This table remembers the ids taken, so a request that
-- leaked (a log, a proxy) cannot be played again; rows older than the window are stale anyway.
CREATE TABLE merchant_statement_requests (
  msg_id       text   PRIMARY KEY,
  merchant_id  text   NOT NULL REFERENCES merchants (id),
  -- The request's own signed time.
  request_time bigint NOT NULL
);
CREATE INDEX merchant_statement_requests_time ON merchant_statement_requests (request_time);

-- A merchant's deposits, newest first, without reading every merchant's.
CREATE INDEX acq_transactions_merchant ON acq_transactions (merchant_id, created_at);
