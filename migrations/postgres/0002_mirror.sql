-- The local FDA mirror: product classification, releasable 510(k) records, and the import log.
-- Full-text search uses generated tsvector columns with GIN indexes (the name weighs most).

CREATE TABLE fda_product_codes (
    product_code                   TEXT PRIMARY KEY,
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
    updated_at                     TIMESTAMPTZ NOT NULL,
    search                         tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', device_name), 'A')
        || setweight(to_tsvector('english', coalesce(definition, '')), 'B')
    ) STORED
);
CREATE INDEX fda_product_codes_search ON fda_product_codes USING GIN (search);
CREATE INDEX fda_product_codes_regulation ON fda_product_codes (regulation_number);

CREATE TABLE fda_510k (
    k_number                   TEXT PRIMARY KEY,
    applicant                  TEXT,
    device_name                TEXT NOT NULL,
    product_code               TEXT,
    decision_date              DATE,
    decision_code              TEXT,
    decision_description       TEXT,
    clearance_type             TEXT,
    date_received              DATE,
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
    updated_at                 TIMESTAMPTZ NOT NULL,
    search                     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', device_name), 'A')
        || setweight(to_tsvector('english', coalesce(applicant, '')), 'C')
    ) STORED
);
CREATE INDEX fda_510k_search ON fda_510k USING GIN (search);
CREATE INDEX fda_510k_product_code ON fda_510k (product_code, decision_date DESC);
CREATE INDEX fda_510k_decision_date ON fda_510k (decision_date DESC);

CREATE TABLE fda_imports (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_name    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    rows_read    BIGINT NOT NULL,
    inserted     BIGINT NOT NULL,
    updated      BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    data_date    DATE,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX fda_imports_kind ON fda_imports (kind, id DESC);
