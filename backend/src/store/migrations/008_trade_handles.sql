-- Issue 9 item 7: the trade handle. Toward the acquirer and the merchant a transaction is known
-- by a random handle (`t-` + 128 random bits, base64url), never by its TransactionIdentity
-- (`operator.session.n`), which would let colluding merchants see which deposits came from one
-- logon. Only the customer's account manager keeps the mapping: here, with its transaction. It
-- translates at its boundary — initiation out, the customer record out, clearing in. Rows made
-- before this migration have none (they were opened under their TransactionIdentity).
ALTER TABLE am_transactions ADD COLUMN trade_handle text;
CREATE UNIQUE INDEX am_transactions_trade_handle ON am_transactions (trade_handle);
