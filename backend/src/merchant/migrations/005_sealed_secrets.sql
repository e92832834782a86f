-- K1 (per session) and K2 (per product version) are kept sealed (AES-256-GCM under the shop's
-- data key, kept outside this database: backend/src/store/sealedColumn.ts), not in clear. The
-- columns are renamed so no code reads them as keys by mistake; rows written before this migration
-- still hold the keys in clear and are sealed by the agent's startup step (resealColumn) before it
-- serves.
ALTER TABLE merchant_sessions RENAME COLUMN k1 TO k1_sealed;
ALTER TABLE merchant_products RENAME COLUMN k2 TO k2_sealed;
-- The stored information message kept a second copy of K1 in clear; only its temporary
-- certificate is read back (dispute evidence), so K1 is dropped from it (it is in k1_sealed).
UPDATE merchant_sessions SET info = info #- '{body,k1}' WHERE info #> '{body,k1}' IS NOT NULL;
