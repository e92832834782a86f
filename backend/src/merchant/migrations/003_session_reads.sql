-- Who may read a trading session (GET /sessions/:id, issue 9 item 6): its wallet, with a
-- `wallet.sessionRead` signed by the session key, fresh (SESSION_READ_WINDOW_MS) and used once.
-- This table remembers the ids of the reads taken, so a leaked header cannot be played again;
-- rows older than the window can no longer be replayed (their time is stale) and are purged by
-- the sweep. Keyed per session, so one session's reads never wait on another's.
CREATE TABLE merchant_session_reads (
  transaction_id text   NOT NULL REFERENCES merchant_sessions (transaction_id),
  msg_id         text   NOT NULL,
  -- The read's own signed time: it is stale (and refused anyway) once the window has passed.
  read_time      bigint NOT NULL,
  PRIMARY KEY (transaction_id, msg_id)
);

CREATE INDEX merchant_session_reads_time ON merchant_session_reads (read_time);
