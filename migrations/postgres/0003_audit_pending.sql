-- Audit rows written with their change and waiting for a sealing round to give them their place
-- on the chain (seq, prev_hash, hash); see src/audit/seal.rs. A row stays here only between its
-- write's commit and the next round (at most seconds, even after a crash: rounds also run on start
-- and every few seconds).
CREATE TABLE audit_pending (
    id           BIGSERIAL PRIMARY KEY,
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor_id     BIGINT,
    actor_email  TEXT,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT,
    project_id   BIGINT,
    reason       TEXT,
    before_json  TEXT,
    after_json   TEXT,
    request_id   TEXT NOT NULL
);
