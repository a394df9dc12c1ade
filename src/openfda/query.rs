//! openFDA `search=` strings built from validated fields and sanitised, quoted terms, so that user
//! text can only ever be the inside of a quoted phrase.
//!
//! openFDA's query parser accepts letters, digits and `._:()"[]{}` plus the spaces and `+` that
//! separate clauses. A term from a user keeps only ASCII letters and digits (lowercased, so a
//! stray `OR` could never be read as an operator even outside quotes) and is always quoted;
//! everything else in the query is this module's own fixed skeleton.

use std::fmt;

use chrono::NaiveDate;

use crate::domain::ids::{KNumber, ProductCode};
use crate::domain::text;

/// openFDA refuses `limit` above 1000.
pub const MAX_LIMIT: u32 = 1000;
/// openFDA refuses `skip` above 25000; deeper pages need `search_after`.
pub const MAX_SKIP: u32 = 25_000;
/// Words of free text used in one query; more only slows openFDA without changing the top.
pub const MAX_TERMS: usize = text::MAX_SEARCH_WORDS;

/// The fields this service searches; the names are openFDA's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    DeviceName,
    ProductCode,
    KNumber,
    /// `k_numbers` of `/device/recall.json`.
    RecallKNumbers,
    /// `recall_number` of `/device/enforcement.json`.
    RecallNumber,
    DecisionDate,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::DeviceName => "device_name",
            Field::ProductCode => "product_code",
            Field::KNumber => "k_number",
            Field::RecallKNumbers => "k_numbers",
            Field::RecallNumber => "recall_number",
            Field::DecisionDate => "decision_date",
        }
    }
}

/// A quoted value: ASCII letters and digits in words separated by single spaces, or a validated
/// identifier. Built only through the constructors below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term(String);

impl Term {
    /// A free-text word or phrase: everything but ASCII letters and digits becomes a separator,
    /// letters are lowercased. `None` when nothing is left.
    pub fn text(raw: &str) -> Option<Term> {
        let words = words(raw);
        (!words.is_empty()).then(|| Term(words.join(" ")))
    }

    /// A product code (`^[A-Z]{3}$`).
    pub fn product_code(code: &str) -> Option<Term> {
        ProductCode::parse(code).map(|c| Term(c.into()))
    }

    /// A 510(k) or De Novo number.
    pub fn k_number(k: &str) -> Option<Term> {
        KNumber::parse(k).map(|k| Term(k.into()))
    }

    /// A recall number like `Z-0359-2013` (the only place a `-` appears inside quotes).
    pub fn recall_number(n: &str) -> Option<Term> {
        let ok = n.len() == 11
            && n.starts_with("Z-")
            && n.as_bytes()[6] == b'-'
            && n.bytes()
                .enumerate()
                .all(|(i, b)| matches!(i, 0 | 1 | 6) || b.is_ascii_digit());
        ok.then(|| Term(n.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The words of `raw` (the one tokeniser, `domain::text::words`) that are plain ASCII letters
/// and digits: nothing else may reach a quoted openFDA term.
fn words(raw: &str) -> Vec<String> {
    text::words(raw)
        .filter(|w| w.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect()
}

/// The search words of free text (`domain::text::significant_words`) as openFDA terms.
pub fn significant_words(raw: &str) -> Vec<Term> {
    text::significant_words(raw)
        .into_iter()
        .filter_map(|w| {
            w.bytes()
                .all(|b| b.is_ascii_alphanumeric())
                .then_some(Term(w))
        })
        .collect()
}

/// One clause of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Clause {
    /// `field:"term"`.
    Is(Field, Term),
    /// `field:[YYYYMMDD TO YYYYMMDD]`; an open end becomes the widest date openFDA holds.
    Between(Field, Option<NaiveDate>, Option<NaiveDate>),
    /// `(a b c)`: any of them (openFDA reads a space as OR). Never empty.
    AnyOf(Vec<Clause>),
}

/// Clauses that must all hold (`a AND b`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    clauses: Vec<Clause>,
}

impl Search {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is(mut self, field: Field, term: Term) -> Self {
        self.clauses.push(Clause::Is(field, term));
        self
    }

    /// Adds `(field:"t1" field:"t2" ...)`; nothing when `terms` is empty.
    pub fn any_of(mut self, field: Field, terms: Vec<Term>) -> Self {
        if !terms.is_empty() {
            let alts = terms.into_iter().map(|t| Clause::Is(field, t)).collect();
            self.clauses.push(Clause::AnyOf(alts));
        }
        self
    }

    /// Adds a date range unless both ends are open.
    pub fn between(mut self, field: Field, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Self {
        if from.is_some() || to.is_some() {
            self.clauses.push(Clause::Between(field, from, to));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}

fn write_clause(f: &mut fmt::Formatter<'_>, clause: &Clause) -> fmt::Result {
    match clause {
        Clause::Is(field, term) => write!(f, "{}:\"{}\"", field.name(), term.0),
        Clause::Between(field, from, to) => {
            let from = from.map_or_else(
                || "19000101".to_string(),
                |d| d.format("%Y%m%d").to_string(),
            );
            let to = to.map_or_else(
                || "29991231".to_string(),
                |d| d.format("%Y%m%d").to_string(),
            );
            write!(f, "{}:[{from} TO {to}]", field.name())
        }
        Clause::AnyOf(alts) => {
            f.write_str("(")?;
            for (i, alt) in alts.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write_clause(f, alt)?;
            }
            f.write_str(")")
        }
    }
}

impl fmt::Display for Search {
    /// The `search=` value before URL encoding (spaces become `+` on the wire).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write_clause(f, clause)?;
        }
        Ok(())
    }
}

/// `sort=field:asc|desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    DecisionDateDesc,
}

impl Sort {
    pub fn as_param(self) -> &'static str {
        match self {
            Sort::DecisionDateDesc => "decision_date:desc",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Splits a built query into its skeleton (quoted contents replaced by `"…"`) and the quoted
    /// contents, failing on an unbalanced quote.
    fn skeleton(query: &str) -> (String, Vec<String>) {
        let mut skeleton = String::new();
        let mut quoted = Vec::new();
        let mut rest = query;
        while let Some(start) = rest.find('"') {
            skeleton.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find('"').expect("balanced quotes");
            quoted.push(after[..end].to_string());
            skeleton.push_str("\"…\"");
            rest = &after[end + 1..];
        }
        skeleton.push_str(rest);
        (skeleton, quoted)
    }

    fn text_search(raw: &str) -> Search {
        Search::new().any_of(Field::DeviceName, significant_words(raw))
    }

    #[test]
    fn builds_the_documented_shapes() {
        let from = NaiveDate::from_ymd_opt(2020, 1, 1);
        let to = NaiveDate::from_ymd_opt(2020, 12, 31);
        let s = Search::new()
            .is(Field::ProductCode, Term::product_code("DQY").unwrap())
            .any_of(
                Field::DeviceName,
                significant_words("Infusion PUMP, the pump"),
            )
            .between(Field::DecisionDate, from, to);
        assert_eq!(
            s.to_string(),
            "product_code:\"DQY\" AND (device_name:\"infusion\" device_name:\"pump\") AND \
             decision_date:[20200101 TO 20201231]"
        );
        let open = Search::new().between(Field::DecisionDate, None, to);
        assert_eq!(open.to_string(), "decision_date:[19000101 TO 20201231]");
    }

    #[test]
    fn hostile_text_stays_inside_quotes() {
        let s = text_search("pump\" OR product_code:\"XYZ\") AND (k_number:* [1 TO 2] \\\" NOT");
        // "or", "and", "to", "product" are stop words; "k", "1", "2" are too short to mean much.
        assert_eq!(
            s.to_string(),
            "(device_name:\"pump\" device_name:\"code\" device_name:\"xyz\" \
             device_name:\"number\" device_name:\"not\")"
        );
    }

    #[test]
    fn identifiers_are_validated() {
        assert!(Term::product_code("dqy").is_none());
        assert!(Term::product_code("DQ\"").is_none());
        assert!(Term::k_number("K12345\"").is_none());
        assert!(Term::recall_number("Z-0359-2013").is_some());
        assert!(Term::recall_number("Z-0359-201\"").is_none());
        assert!(Term::text("!!! ***").is_none());
    }

    proptest! {
        #[test]
        fn user_text_never_changes_the_structure(raw in any::<String>(), extra in "[ -~]{0,60}") {
            let text = format!("{raw}{extra}");
            let built = text_search(&text).to_string();
            let (skel, quoted) = skeleton(&built);
            // Every quoted piece is lowercase ASCII letters and digits.
            for q in &quoted {
                prop_assert!(!q.is_empty());
                prop_assert!(q.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{q:?}");
            }
            // The skeleton is exactly ours: `(device_name:"…" device_name:"…" ...)` or nothing.
            let n = quoted.len();
            prop_assert!(n <= MAX_TERMS);
            let expected = if n == 0 {
                String::new()
            } else {
                format!("({})", vec!["device_name:\"…\""; n].join(" "))
            };
            prop_assert_eq!(skel, expected);
        }

        #[test]
        fn combined_queries_keep_their_skeleton(raw in "\\PC{0,80}", code in "[A-Z]{3}") {
            let built = Search::new()
                .is(Field::ProductCode, Term::product_code(&code).unwrap())
                .any_of(Field::DeviceName, significant_words(&raw))
                .between(Field::DecisionDate, NaiveDate::from_ymd_opt(2001, 2, 3), None)
                .to_string();
            let (skel, quoted) = skeleton(&built);
            let n = quoted.len() - 1;
            let words = if n == 0 {
                String::new()
            } else {
                format!(" AND ({})", vec!["device_name:\"…\""; n].join(" "))
            };
            prop_assert_eq!(
                skel,
                format!("product_code:\"…\"{words} AND decision_date:[20010203 TO 29991231]")
            );
            prop_assert_eq!(&quoted[0], &code);
        }
    }
}
