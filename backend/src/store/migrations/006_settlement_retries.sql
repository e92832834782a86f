-- FIG 3 timers, one transaction at a time. Several processes of one operator share this
-- database, so what a failed attempt leaves behind (how often it failed, when to try again, why)
-- lives here, not in one process's memory.
--
-- Settling at the deadline (tryClear): a failure is recorded on the transaction's own row and
-- retried with back-off; the other transactions go on.
ALTER TABLE acq_transactions ADD COLUMN settle_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE acq_transactions ADD COLUMN settle_next_at bigint;
ALTER TABLE acq_transactions ADD COLUMN settle_error text;
-- Delivering the clearing information to the customer's operator: transient failures (no
-- answer, 5xx) are retried with back-off; a final refusal (e.g. SESSION_CLOSED: that operator
-- never opened the transaction) ends the retries and is kept here as the catalogue error.
ALTER TABLE acq_transactions ADD COLUMN clearing_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE acq_transactions ADD COLUMN clearing_next_at bigint;
ALTER TABLE acq_transactions ADD COLUMN clearing_error text;
ALTER TABLE acq_transactions ADD COLUMN clearing_refusal jsonb;
CREATE INDEX acq_transactions_unsent ON acq_transactions (clearing_next_at) WHERE state = 'cleared' AND clearing_sent = false;
