//! Full-text search of the mirrored 510(k) records: PostgreSQL `tsvector` ranked by `ts_rank`,
//! SQLite FTS5 ranked by `bm25()`, with the same filters and the same result shape.
//!
//! User text never reaches either query language as syntax: it is cut into alphanumeric words,
//! and only those words, OR-ed together (quoted for FTS5), form the query.

use chrono::NaiveDate;

use super::{Fda510k, COLUMNS_510K};
use crate::db::Db;

/// A mirror query, as the predicate search asks it.
#[derive(Debug, Clone, Default)]
pub struct MirrorQuery {
    /// Free text matched against device names (and applicants, weighted lower).
    pub text: Option<String>,
    pub product_code: Option<String>,
    pub decision_date_from: Option<NaiveDate>,
    pub decision_date_to: Option<NaiveDate>,
    pub limit: i64,
}

/// At most this many words reach the full-text query, which bounds its cost.
const MAX_WORDS: usize = 12;

/// Words of company names (the applicant is indexed too) that match thousands of records and
/// say nothing about a device: searching them costs time and buys no ranking signal.
const COMPANY_WORDS: &[&str] = &[
    "medical",
    "inc",
    "corp",
    "corporation",
    "company",
    "ltd",
    "llc",
    "international",
    "industries",
    "technologies",
    "technology",
    "healthcare",
    "health",
    "laboratories",
    "labs",
    "group",
    "gmbh",
    "usa",
    "limited",
];

/// The distinct lowercase words of `text` worth searching for: stop words ("system", "device",
/// "the"), company-name words and bare numbers are dropped unless nothing else is left.
pub fn query_words(text: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for w in crate::domain::text::words(text) {
        if w.chars().nth(1).is_some() && !all.contains(&w) {
            all.push(w);
        }
    }
    let useful: Vec<String> = all
        .iter()
        .filter(|w| !COMPANY_WORDS.contains(&w.as_str()))
        .filter(|w| !crate::domain::text::terms(w).is_empty())
        .cloned()
        .collect();
    let mut words = if useful.is_empty() { all } else { useful };
    words.truncate(MAX_WORDS);
    words
}

/// `"w1" OR "w2"` for FTS5 (quotes doubled inside, though words carry none).
fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `w1 | w2` for PostgreSQL's `to_tsquery`; the words are alphanumeric, so never operators.
fn tsquery(words: &[String]) -> String {
    words.join(" | ")
}

#[derive(sqlx::FromRow)]
struct Hit {
    #[sqlx(flatten)]
    record: Fda510k,
    total: i64,
}

/// Placeholder numbering and the WHERE clauses of the filters.
struct Filters {
    clauses: Vec<String>,
    next: usize,
}

impl Filters {
    fn new(q: &MirrorQuery, prefix: &str, first: usize) -> Self {
        let mut f = Filters {
            clauses: Vec::new(),
            next: first,
        };
        if q.product_code.is_some() {
            f.push(format!("{prefix}product_code = ${}", f.next));
        }
        if q.decision_date_from.is_some() {
            f.push(format!("{prefix}decision_date >= ${}", f.next));
        }
        if q.decision_date_to.is_some() {
            f.push(format!("{prefix}decision_date <= ${}", f.next));
        }
        f
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
        self.next += 1;
    }

    fn and(&self) -> String {
        self.clauses
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect::<String>()
    }
}

/// Full-text search with filters. Returns the best `limit` records and the number matching.
/// With no usable text, the newest decisions matching the filters come first.
pub async fn search_510k(db: &Db, q: &MirrorQuery) -> Result<(Vec<Fda510k>, i64), sqlx::Error> {
    let words = q.text.as_deref().map(query_words).unwrap_or_default();
    let columns = |prefix: &str| {
        COLUMNS_510K
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (sql, text) = if words.is_empty() {
        let f = Filters::new(q, "", 1);
        let sql = format!(
            "SELECT {}, COUNT(*) OVER () AS total FROM fda_510k WHERE 1 = 1{} \
             ORDER BY decision_date DESC NULLS LAST, k_number LIMIT ${}",
            columns(""),
            f.and(),
            f.next
        );
        (sql, None)
    } else {
        let f = Filters::new(q, "t.", 2);
        let sql = match db {
            // Ranked and counted on narrow rows; whole records are read for the page only.
            Db::Postgres(_) => format!(
                "WITH r AS (SELECT t.k_number, ts_rank(t.search, query) AS score, t.decision_date, \
                 COUNT(*) OVER () AS total \
                 FROM fda_510k t, to_tsquery('english', $1) query \
                 WHERE t.search @@ query{} \
                 ORDER BY score DESC, t.decision_date DESC NULLS LAST, t.k_number LIMIT ${}) \
                 SELECT {}, r.total FROM r JOIN fda_510k t ON t.k_number = r.k_number \
                 ORDER BY r.score DESC, r.decision_date DESC NULLS LAST, r.k_number",
                f.and(),
                f.next,
                columns("t.")
            ),
            // Without filters, only the matches scoring at least the `limit`-th best score (ties
            // included) are joined to their records for the tie-break: the same page as below,
            // without joining every match of a common word (a third of an uncached search).
            Db::Sqlite(_) if f.clauses.is_empty() => format!(
                "WITH m AS MATERIALIZED (SELECT rowid AS id, bm25(fda_510k_fts, 10.0, 2.0) AS score \
                 FROM fda_510k_fts WHERE fda_510k_fts MATCH $1), \
                 kth AS (SELECT score FROM m ORDER BY score LIMIT 1 OFFSET ${next} - 1), \
                 r AS (SELECT t.id, m.score, t.decision_date, t.k_number, (SELECT COUNT(*) FROM m) AS total \
                 FROM m JOIN fda_510k t ON t.id = m.id WHERE m.score <= COALESCE((SELECT score FROM kth), m.score) \
                 ORDER BY m.score, t.decision_date DESC NULLS LAST, t.k_number LIMIT ${next}) \
                 SELECT {}, r.total FROM r JOIN fda_510k t ON t.id = r.id \
                 ORDER BY r.score, r.decision_date DESC NULLS LAST, r.k_number",
                columns("t."),
                next = f.next
            ),
            // The match is materialised first: bm25() only works in a query the FTS table
            // drives, and the planner may otherwise start from the filters' index.
            // Ranked and counted on narrow rows; whole records are read for the page only.
            Db::Sqlite(_) => format!(
                "WITH m AS MATERIALIZED (SELECT rowid AS id, bm25(fda_510k_fts, 10.0, 2.0) AS score \
                 FROM fda_510k_fts WHERE fda_510k_fts MATCH $1), \
                 r AS (SELECT t.id, m.score, t.decision_date, t.k_number, COUNT(*) OVER () AS total \
                 FROM m JOIN fda_510k t ON t.id = m.id WHERE 1 = 1{} \
                 ORDER BY m.score, t.decision_date DESC NULLS LAST, t.k_number LIMIT ${}) \
                 SELECT {}, r.total FROM r JOIN fda_510k t ON t.id = r.id \
                 ORDER BY r.score, r.decision_date DESC NULLS LAST, r.k_number",
                f.and(),
                f.next,
                columns("t.")
            ),
        };
        let text = match db {
            Db::Postgres(_) => tsquery(&words),
            Db::Sqlite(_) => fts5_query(&words),
        };
        (sql, Some(text))
    };
    let limit = q.limit.clamp(1, 1000);
    let hits: Vec<Hit> = crate::on_read!(db, pool => {
        let mut query = sqlx::query_as::<_, Hit>(&sql);
        if let Some(text) = &text {
            query = query.bind(text);
        }
        if let Some(code) = &q.product_code {
            query = query.bind(code);
        }
        if let Some(from) = q.decision_date_from {
            query = query.bind(from);
        }
        if let Some(to) = q.decision_date_to {
            query = query.bind(to);
        }
        query.bind(limit).fetch_all(pool).await
    })?;
    let total = hits.first().map(|h| h.total).unwrap_or(0);
    Ok((hits.into_iter().map(|h| h.record).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_syntax_and_stop_words() {
        assert_eq!(
            query_words(r#"Infusion "pump" OR (catheter*) -needle"#),
            vec!["infusion", "pump", "catheter", "needle"]
        );
        assert_eq!(query_words("the system"), vec!["the", "system"]);
        assert_eq!(query_words("\"() * - :"), Vec::<String>::new());
        assert_eq!(query_words("Prothèse Ünïcode"), vec!["prothèse", "ünïcode"]);
    }

    #[test]
    fn fts5_terms_are_quoted_and_or_joined() {
        let w = vec!["or".to_string(), "near".to_string()];
        assert_eq!(fts5_query(&w), r#""or" OR "near""#);
        assert_eq!(tsquery(&w), "or | near");
    }
}
