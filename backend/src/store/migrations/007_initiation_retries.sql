-- A wallet's initiation that failed (the merchant could not be reached) left its row holding the
-- message id, so the wallet's resend of the very same message hit the unique constraint and was
-- answered INTERNAL until the session timed out. A message id now belongs to at most one live
-- attempt: a failed attempt keeps its id for the record but no longer blocks a clean retry.
ALTER TABLE am_transactions DROP CONSTRAINT am_transactions_initiate_msg_id_key;
CREATE UNIQUE INDEX am_transactions_initiate_msg_id_live ON am_transactions (initiate_msg_id) WHERE state <> 'failed';
CREATE INDEX am_transactions_initiate_msg_id ON am_transactions (initiate_msg_id);
