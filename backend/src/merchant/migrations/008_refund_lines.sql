-- Issue 14 item 2: refunds before clearing. While a trading session is open the merchant may give
-- money back for an accepted purchase as a line it signs; its record then reports the accepted
-- cumulative minus these lines, and the wallet learns them in the merchant's answers. `refund_id`
-- makes a retry the same line (the merchant's administration may send it twice).
CREATE TABLE merchant_refund_lines (
  refund_id      text   PRIMARY KEY,
  transaction_id text   NOT NULL REFERENCES merchant_sessions (transaction_id),
  n              integer NOT NULL,
  amount         bigint NOT NULL CHECK (amount > 0),
  line_msg       jsonb  NOT NULL,
  created_at     bigint NOT NULL
);
CREATE INDEX merchant_refund_lines_tx ON merchant_refund_lines (transaction_id);
