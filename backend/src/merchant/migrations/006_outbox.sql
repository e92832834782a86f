-- Issue 12 item 2: one durable outbox (backend/src/store/outbox.ts), the same table as the
-- operator's. Merchant records to the acquirer are its entries (topic `merchant-record`, key =
-- the record's msgId, which the acquirer answers once): retried with the one back-off until
-- acknowledged, or ended by a final refusal. The record itself and the acquirer's answer stay in
-- merchant_records; how its delivery goes is the outbox's.
CREATE TABLE outbox (
  topic           text    NOT NULL CONSTRAINT outbox_topic CHECK (topic ~ '^[a-z0-9][a-z0-9_.:-]{0,79}$'),
  key             text    NOT NULL CONSTRAINT outbox_key CHECK (key <> '' AND length(key) <= 200),
  payload         jsonb   NOT NULL,
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- When it may next be tried; while a dispatcher delivers it, that dispatcher's lease expiry.
  next_attempt_at bigint  NOT NULL,
  done_at         bigint,
  last_error      text,
  enqueued_at     bigint  NOT NULL,
  answer          jsonb,
  refusal         jsonb,
  PRIMARY KEY (topic, key)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE done_at IS NULL;

INSERT INTO outbox (topic, key, payload, attempts, next_attempt_at, last_error, enqueued_at, done_at)
SELECT 'merchant-record', msg_id, jsonb_build_object('transactionId', transaction_id), attempts, next_attempt_at, last_error,
       created_at, sent_at
FROM merchant_records;

DROP INDEX merchant_records_due;
ALTER TABLE merchant_records DROP COLUMN attempts;
ALTER TABLE merchant_records DROP COLUMN next_attempt_at;
ALTER TABLE merchant_records DROP COLUMN last_error;
