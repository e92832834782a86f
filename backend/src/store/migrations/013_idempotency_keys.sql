-- Issue 15 item 6: administration calls accept an `Idempotency-Key` header. The first request
-- under a key is stored with a digest of its body and, once answered, its answer: the same key
-- and body again get that answer (and have no second effect); the same key with another body is
-- a CONFLICT. A row without an answer is a request still running (or one that died; it is
-- deleted when its handler fails for a reason that may pass).
CREATE TABLE idempotency_keys (
  -- The route, e.g. 'POST /v1/admin/fund': one key may be used once per route.
  scope          text   NOT NULL,
  key            text   NOT NULL CHECK (key <> '' AND length(key) <= 255),
  request_digest text   NOT NULL,
  status         integer,
  answer         jsonb,
  created_at     bigint NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
