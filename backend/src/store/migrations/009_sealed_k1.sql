-- K1 is kept sealed (AES-256-GCM under the operator's data key, kept outside this database in
-- its key folder: backend/src/store/sealedColumn.ts), not in clear. The column is renamed so no
-- code reads it as K1 by mistake; rows written before this migration still hold K1 in clear and
-- are sealed by the server's startup step (resealColumn) before it serves.
ALTER TABLE acq_transactions RENAME COLUMN k1 TO k1_sealed;
