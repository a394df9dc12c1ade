//! The local FDA mirror's SQL: product codes, 510(k) records, the import log, and full-text search.
//!
//! Upserts are multi-row `INSERT … ON CONFLICT … DO UPDATE … WHERE <something changed>`, so a
//! re-import touches no row; a source that lacks a field (the CSV has no `date_received`) never
//! erases what another source stored (`COALESCE(excluded.x, t.x)`).

pub mod safety;
mod search;
mod upsert;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use search::{search_510k, MirrorQuery};
pub use upsert::{upsert_510k, upsert_product_codes, Upserted};

use super::{now, Db, Tx};
use crate::domain::classify::TradeName;
use crate::{on_read, on_tx};

/// One 510(k) (or De Novo) decision, with openFDA's `/device/510k` field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Fda510k {
    #[schema(example = "K872032")]
    pub k_number: String,
    pub applicant: Option<String>,
    pub device_name: String,
    #[schema(example = "KTN")]
    pub product_code: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// e.g. `SESE` (substantially equivalent), `DENG` (De Novo granted).
    pub decision_code: Option<String>,
    pub decision_description: Option<String>,
    /// `Traditional`, `Special`, `Abbreviated`, `Direct`, …
    pub clearance_type: Option<String>,
    pub date_received: Option<NaiveDate>,
    pub review_advisory_committee: Option<String>,
    pub advisory_committee: Option<String>,
    /// `Summary` or `Statement`.
    pub statement_or_summary: Option<String>,
    pub third_party_flag: Option<String>,
    pub expedited_review_flag: Option<String>,
    pub country_code: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub zip_code: Option<String>,
}

/// One product code of FDA's product-classification database (openFDA `/device/classification`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct ProductCode {
    #[schema(example = "FRN")]
    pub product_code: String,
    pub device_name: String,
    /// `1`, `2`, `3`, `U` (unclassified), `N` (not classified) or `F` (HDE).
    pub device_class: String,
    #[schema(example = "880.5725")]
    pub regulation_number: Option<String>,
    pub medical_specialty: Option<String>,
    pub review_panel: Option<String>,
    pub definition: Option<String>,
    /// `Y` or `N`.
    pub implant_flag: Option<String>,
    pub life_sustain_support_flag: Option<String>,
    pub gmp_exempt_flag: Option<String>,
    pub third_party_flag: Option<String>,
    /// `1` 510(k), `2` PMA, `3` Contact ODE, `4` 510(k) exempt; FDA's file also uses `6` (HDE),
    /// `7` (enforcement discretion, mostly kits) and `8` (emergency use).
    pub submission_type_id: Option<String>,
    pub unclassified_reason: Option<String>,
    pub review_code: Option<String>,
    pub physical_state: Option<String>,
    pub technical_method: Option<String>,
    pub target_area: Option<String>,
    pub summary_malfunction_reporting: Option<String>,
}

/// One row of the import log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ImportRecord {
    pub id: i64,
    pub file_name: String,
    /// `classification` or `510k`.
    pub kind: String,
    pub sha256: String,
    pub rows_read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub rejected: i64,
    pub data_date: Option<NaiveDate>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

pub(crate) const COLUMNS_510K: &[&str] = &[
    "k_number",
    "applicant",
    "device_name",
    "product_code",
    "decision_date",
    "decision_code",
    "decision_description",
    "clearance_type",
    "date_received",
    "review_advisory_committee",
    "advisory_committee",
    "statement_or_summary",
    "third_party_flag",
    "expedited_review_flag",
    "country_code",
    "state",
    "city",
    "zip_code",
];

pub(crate) const COLUMNS_PRODUCT_CODE: &[&str] = &[
    "product_code",
    "device_name",
    "device_class",
    "regulation_number",
    "medical_specialty",
    "review_panel",
    "definition",
    "implant_flag",
    "life_sustain_support_flag",
    "gmp_exempt_flag",
    "third_party_flag",
    "submission_type_id",
    "unclassified_reason",
    "review_code",
    "physical_state",
    "technical_method",
    "target_area",
    "summary_malfunction_reporting",
];

/// What one finished import records.
pub struct NewImport<'a> {
    pub file_name: &'a str,
    pub kind: &'a str,
    pub sha256: &'a str,
    pub rows_read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub rejected: i64,
    pub data_date: Option<NaiveDate>,
    pub started_at: DateTime<Utc>,
}

const IMPORT_COLUMNS: &str =
    "id, file_name, kind, sha256, rows_read, inserted, updated, rejected, \
    data_date, started_at, finished_at";

pub async fn record_import(tx: &mut Tx, n: &NewImport<'_>) -> Result<ImportRecord, sqlx::Error> {
    let sql = format!(
        "INSERT INTO fda_imports (file_name, kind, sha256, rows_read, inserted, updated, rejected, \
         data_date, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING {IMPORT_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, ImportRecord>(&sql)
        .bind(n.file_name).bind(n.kind).bind(n.sha256).bind(n.rows_read).bind(n.inserted)
        .bind(n.updated).bind(n.rejected).bind(n.data_date).bind(n.started_at).bind(now())
        .fetch_one(conn).await)
}

/// The newest import (of any kind).
pub async fn last_import(db: &Db) -> Result<Option<ImportRecord>, sqlx::Error> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM fda_imports ORDER BY id DESC LIMIT 1");
    on_read!(db, pool => sqlx::query_as::<_, ImportRecord>(&sql).fetch_optional(pool).await)
}

/// The id of the newest import, 0 when none: changes whenever the mirror's data may have changed.
pub async fn import_generation(db: &Db) -> Result<i64, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM fda_imports")
        .fetch_one(pool).await)
    .map(|v| v.unwrap_or(0))
}

/// Every import as `(id, file_name, sha256)`, oldest first: what the mirror's data came from.
pub async fn imported_files(db: &Db) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as::<_, (i64, String, String)>(
        "SELECT id, file_name, sha256 FROM fda_imports ORDER BY id").fetch_all(pool).await)
}

fn select_510k() -> String {
    format!("SELECT {} FROM fda_510k", COLUMNS_510K.join(", "))
}

pub async fn find_510k(db: &Db, k_number: &str) -> Result<Option<Fda510k>, sqlx::Error> {
    let sql = format!("{} WHERE k_number = $1", select_510k());
    on_read!(db, pool => sqlx::query_as::<_, Fda510k>(&sql).bind(k_number).fetch_optional(pool).await)
}

pub async fn find_product_code(db: &Db, code: &str) -> Result<Option<ProductCode>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM fda_product_codes WHERE product_code = $1",
        COLUMNS_PRODUCT_CODE.join(", ")
    );
    on_read!(db, pool => sqlx::query_as::<_, ProductCode>(&sql).bind(code).fetch_optional(pool).await)
}

/// Several product codes in one query (absent codes are simply missing from the answer).
pub async fn find_product_codes(db: &Db, codes: &[&str]) -> Result<Vec<ProductCode>, sqlx::Error> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=codes.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {} FROM fda_product_codes WHERE product_code IN ({})",
        COLUMNS_PRODUCT_CODE.join(", "),
        placeholders.join(", ")
    );
    on_read!(db, pool => {
        let mut query = sqlx::query_as::<_, ProductCode>(&sql);
        for code in codes {
            query = query.bind(*code);
        }
        query.fetch_all(pool).await
    })
}

/// Every product code (about 7,000 rows), for building the classification index.
pub async fn all_product_codes(db: &Db) -> Result<Vec<ProductCode>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM fda_product_codes ORDER BY product_code",
        COLUMNS_PRODUCT_CODE.join(", ")
    );
    on_read!(db, pool => sqlx::query_as::<_, ProductCode>(&sql).fetch_all(pool).await)
}

/// Every 510(k) with a product code, for the classification index. Streamed so the caller can
/// fold ~50k names without holding the rows twice.
pub async fn trade_names(db: &Db, mut each: impl FnMut(TradeName)) -> Result<(), sqlx::Error> {
    use chrono::Datelike;
    use futures::TryStreamExt;
    const SQL: &str = "SELECT k_number, product_code, device_name, decision_date FROM fda_510k \
        WHERE product_code IS NOT NULL ORDER BY k_number";
    on_read!(db, pool => {
        let mut rows = sqlx::query_as::<_, (String, String, String, Option<NaiveDate>)>(SQL).fetch(pool);
        while let Some((k_number, product_code, device_name, date)) = rows.try_next().await? {
            each(TradeName { k_number, product_code, device_name, year: date.map(|d| d.year()) });
        }
        Ok::<(), sqlx::Error>(())
    })
}

/// True when the mirror holds any 510(k) record (without counting them).
pub async fn has_510k(db: &Db) -> Result<bool, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM fda_510k)").fetch_one(pool).await)
}

pub async fn count_510k(db: &Db) -> Result<i64, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM fda_510k").fetch_one(pool).await)
}

pub async fn count_product_codes(db: &Db) -> Result<i64, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM fda_product_codes").fetch_one(pool).await)
}

/// Verifies that the full-text indexes match their tables (SQLite's FTS5 `integrity-check`;
/// PostgreSQL's generated columns cannot drift). An error names the broken index.
pub async fn check_search_index(db: &Db) -> Result<(), sqlx::Error> {
    if let Db::Sqlite(s) = db {
        for table in ["fda_510k_fts", "fda_product_codes_fts"] {
            let sql = format!("INSERT INTO {table} ({table}) VALUES ('integrity-check')");
            sqlx::query(&sql).execute(&s.write).await?;
        }
    }
    Ok(())
}
