-- Issue 12 item 2: one durable outbox. The billing outbox becomes the outbox of every delivery
-- that must happen at least once: billing records (topic `billing:<sink>`, key = record id) and
-- clearing information to the customer's operator (topic `clearing`, key = trade handle). An
-- entry ends when delivered (`done_at`, the receiver's `answer`) or refused for good (`refusal`,
-- a catalogue error); otherwise it is retried with the one back-off (protocol/src/backoff.ts).
ALTER TABLE billing_outbox RENAME TO outbox;
ALTER TABLE outbox DROP CONSTRAINT billing_outbox_sink_check;
ALTER TABLE outbox DROP CONSTRAINT billing_outbox_record_id_check;
ALTER TABLE outbox RENAME COLUMN sink TO topic;
ALTER TABLE outbox RENAME COLUMN record_id TO key;
ALTER TABLE outbox RENAME COLUMN record TO payload;
ALTER TABLE outbox RENAME COLUMN delivered_at TO done_at;
ALTER TABLE outbox ADD COLUMN answer jsonb;
ALTER TABLE outbox ADD COLUMN refusal jsonb;
UPDATE outbox SET topic = 'billing:' || topic;
ALTER TABLE outbox ADD CONSTRAINT outbox_topic CHECK (topic ~ '^[a-z0-9][a-z0-9_.:-]{0,79}$');
ALTER TABLE outbox ADD CONSTRAINT outbox_key CHECK (key <> '' AND length(key) <= 200);
ALTER INDEX billing_outbox_due RENAME TO outbox_due;

-- Clearing information not yet delivered, with its attempts so far, moves into the outbox; the
-- columns that kept it on the transaction's row are no longer read.
INSERT INTO outbox (topic, key, payload, attempts, next_attempt_at, last_error, enqueued_at, done_at, refusal)
SELECT 'clearing', id, jsonb_build_object('customerOperator', customer_operator, 'clearing', clearing),
       clearing_attempts, COALESCE(clearing_next_at, 0), clearing_error, created_at,
       CASE WHEN clearing_refusal IS NULL THEN NULL ELSE created_at END, clearing_refusal
FROM acq_transactions
WHERE state = 'cleared' AND clearing_sent = false AND clearing IS NOT NULL;
DROP INDEX acq_transactions_unsent;
ALTER TABLE acq_transactions DROP COLUMN clearing_sent;
ALTER TABLE acq_transactions DROP COLUMN clearing_attempts;
ALTER TABLE acq_transactions DROP COLUMN clearing_next_at;
ALTER TABLE acq_transactions DROP COLUMN clearing_error;
ALTER TABLE acq_transactions DROP COLUMN clearing_refusal;
