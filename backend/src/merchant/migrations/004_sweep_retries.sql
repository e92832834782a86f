-- The session timer closes each expired session on its own (issue 9 item 2's class, on the merchant
-- side): a session whose close fails is logged, kept open, and tried again after a back-off, while
-- the sweep goes on with the others. Without these columns one failing session at the head of the
-- expiry order would be picked first by every sweep and hold up all that follow it.
ALTER TABLE merchant_sessions ADD COLUMN close_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE merchant_sessions ADD COLUMN close_next_at bigint NOT NULL DEFAULT 0;
ALTER TABLE merchant_sessions ADD COLUMN close_error text;
