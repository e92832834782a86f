-- Billing record ids are a kind prefix and the transaction id unchanged ("d.op-sek.1.10"), so
-- they are injective by construction (protocol/src/billingIds.ts); the old padded form let the
-- 1st, 10th and 100th deposit of a logon share one id. The outbox accepts the new form (dots,
-- up to 130 characters) as well as the old base64url ids of rows already enqueued.
ALTER TABLE billing_outbox DROP CONSTRAINT billing_outbox_record_id_check;
ALTER TABLE billing_outbox ADD CONSTRAINT billing_outbox_record_id_check
  CHECK (record_id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,129}$');
