-- The billing outbox (DESIGN.md FIG 3 step 11). The account manager inserts a row per billing sink
-- in the same transaction that clears a transaction, so a withdrawal or deposit record exists iff
-- the clearing committed; a dispatcher then delivers the rows to the sinks at least once.
-- Times are bigint milliseconds since the epoch read from the injected clock (not now()), so
-- tests can move time. Same SQL on PGlite, PostgreSQL, CockroachDB and YugabyteDB: no triggers,
-- no sequences, no advisory locks; rows are claimed with a conditional UPDATE (see dispatcher.ts).

CREATE TABLE billing_outbox (
  -- Which configured sink this row is for (a record goes to every sink as its own row).
  sink            text    NOT NULL CHECK (sink ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  -- The record's own recordId: the key receivers deduplicate on.
  record_id       text    NOT NULL CHECK (record_id ~ '^[A-Za-z0-9_-]{16,64}$'),
  -- The operator-signed record message, Signed<'am.withdrawal' | 'am.deposit'>, delivered as is.
  record          jsonb   NOT NULL,
  -- Delivery attempts made so far (failed ones, plus the successful one).
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- When the row may next be tried. While a dispatcher delivers it, this is that dispatcher's
  -- lease expiry, so no other process picks it up meanwhile.
  next_attempt_at bigint  NOT NULL,
  -- Set once a sink accepted the record; NULL while pending.
  delivered_at    bigint,
  last_error      text,
  enqueued_at     bigint  NOT NULL,
  -- Enqueuing the same record for the same sink twice is a no-op (ON CONFLICT DO NOTHING).
  PRIMARY KEY (sink, record_id)
);

-- The dispatcher's question, "what is due?", reads only pending rows.
CREATE INDEX billing_outbox_due ON billing_outbox (next_attempt_at) WHERE delivered_at IS NULL;
