-- The local FDA mirror: product classification, releasable 510(k) records, and the import log.
-- Full-text search uses FTS5 external-content tables kept in step by triggers. The tables carry
-- an INTEGER PRIMARY KEY because VACUUM may renumber implicit rowids, which would silently
-- detach the FTS rows from their records.

CREATE TABLE fda_product_codes (
    id                             INTEGER PRIMARY KEY,
    product_code                   TEXT NOT NULL UNIQUE,
    device_name                    TEXT NOT NULL,
    device_class                   TEXT NOT NULL,
    regulation_number              TEXT,
    medical_specialty              TEXT,
    review_panel                   TEXT,
    definition                     TEXT,
    implant_flag                   TEXT,
    life_sustain_support_flag      TEXT,
    gmp_exempt_flag                TEXT,
    third_party_flag               TEXT,
    submission_type_id             TEXT,
    unclassified_reason            TEXT,
    review_code                    TEXT,
    physical_state                 TEXT,
    technical_method               TEXT,
    target_area                    TEXT,
    summary_malfunction_reporting  TEXT,
    source                         TEXT NOT NULL,
    updated_at                     TEXT NOT NULL
);
CREATE INDEX fda_product_codes_regulation ON fda_product_codes (regulation_number);

CREATE VIRTUAL TABLE fda_product_codes_fts USING fts5(
    device_name, definition,
    content = 'fda_product_codes', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER fda_product_codes_ai AFTER INSERT ON fda_product_codes BEGIN
    INSERT INTO fda_product_codes_fts (rowid, device_name, definition)
    VALUES (new.id, new.device_name, new.definition);
END;
CREATE TRIGGER fda_product_codes_ad AFTER DELETE ON fda_product_codes BEGIN
    INSERT INTO fda_product_codes_fts (fda_product_codes_fts, rowid, device_name, definition)
    VALUES ('delete', old.id, old.device_name, old.definition);
END;
CREATE TRIGGER fda_product_codes_au AFTER UPDATE OF device_name, definition ON fda_product_codes BEGIN
    INSERT INTO fda_product_codes_fts (fda_product_codes_fts, rowid, device_name, definition)
    VALUES ('delete', old.id, old.device_name, old.definition);
    INSERT INTO fda_product_codes_fts (rowid, device_name, definition)
    VALUES (new.id, new.device_name, new.definition);
END;

CREATE TABLE fda_510k (
    id                         INTEGER PRIMARY KEY,
    k_number                   TEXT NOT NULL UNIQUE,
    applicant                  TEXT,
    device_name                TEXT NOT NULL,
    product_code               TEXT,
    decision_date              TEXT,
    decision_code              TEXT,
    decision_description       TEXT,
    clearance_type             TEXT,
    date_received              TEXT,
    review_advisory_committee  TEXT,
    advisory_committee         TEXT,
    statement_or_summary       TEXT,
    third_party_flag           TEXT,
    expedited_review_flag      TEXT,
    country_code               TEXT,
    state                      TEXT,
    city                       TEXT,
    zip_code                   TEXT,
    source                     TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
);
CREATE INDEX fda_510k_product_code ON fda_510k (product_code, decision_date DESC);
CREATE INDEX fda_510k_decision_date ON fda_510k (decision_date DESC);

CREATE VIRTUAL TABLE fda_510k_fts USING fts5(
    device_name, applicant,
    content = 'fda_510k', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER fda_510k_ai AFTER INSERT ON fda_510k BEGIN
    INSERT INTO fda_510k_fts (rowid, device_name, applicant)
    VALUES (new.id, new.device_name, new.applicant);
END;
CREATE TRIGGER fda_510k_ad AFTER DELETE ON fda_510k BEGIN
    INSERT INTO fda_510k_fts (fda_510k_fts, rowid, device_name, applicant)
    VALUES ('delete', old.id, old.device_name, old.applicant);
END;
CREATE TRIGGER fda_510k_au AFTER UPDATE OF device_name, applicant ON fda_510k BEGIN
    INSERT INTO fda_510k_fts (fda_510k_fts, rowid, device_name, applicant)
    VALUES ('delete', old.id, old.device_name, old.applicant);
    INSERT INTO fda_510k_fts (rowid, device_name, applicant)
    VALUES (new.id, new.device_name, new.applicant);
END;

CREATE TABLE fda_imports (
    id           INTEGER PRIMARY KEY,
    file_name    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    rows_read    INTEGER NOT NULL,
    inserted     INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    data_date    TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL
);
CREATE INDEX fda_imports_kind ON fda_imports (kind, id DESC);
