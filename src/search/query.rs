//! The one predicate-search query: what every entry point asks (the `GET` route, a project's
//! search, the assistant's task), validated by one set of rules, so the same input gets the same
//! answer, and free text reaching the ranking is bounded.

use chrono::NaiveDate;

use crate::domain::ids::ProductCode;
use crate::domain::text::significant_words;
use crate::domain::validation::{FieldErrors, Invalid};

/// The longest free text a search accepts, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// A validated search.
#[derive(Debug, Clone, Default)]
pub struct PredicateQuery {
    pub text: Option<String>,
    pub product_code: Option<ProductCode>,
    pub decision_date_from: Option<NaiveDate>,
    pub decision_date_to: Option<NaiveDate>,
    /// Results returned (1..=100).
    pub limit: usize,
    /// The day recency is judged from; `None` for today (a replay gives the recorded day).
    pub as_of: Option<NaiveDate>,
}

/// A search as asked, before validation. Absent (or blank) fields take the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchRequest<'a> {
    pub q: Option<&'a str>,
    pub product_code: Option<&'a str>,
    pub decision_date_from: Option<&'a str>,
    pub decision_date_to: Option<&'a str>,
    pub limit: Option<i64>,
}

/// What fills in what a request leaves out: the subject's own text and product code (a
/// project's, or what the assistant was told), and the entry point's page size.
#[derive(Debug, Clone, Copy)]
pub struct SearchDefaults<'a> {
    pub text: Option<&'a str>,
    pub product_code: Option<&'a str>,
    pub limit: usize,
}

impl PredicateQuery {
    /// The day recency is judged from: the query's own, else today.
    pub fn ranked_on(&self) -> NaiveDate {
        self.as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    /// The same query with its day fixed, so that the answer can be recomputed later.
    pub fn pinned(&self) -> PredicateQuery {
        PredicateQuery {
            as_of: Some(self.ranked_on()),
            ..self.clone()
        }
    }

    /// Validates `req`. Field names in the errors carry `prefix` (e.g. `parameters.`), so each
    /// entry point names its own field; the rules and messages are the same everywhere.
    pub fn parse(
        req: &SearchRequest<'_>,
        defaults: &SearchDefaults<'_>,
        prefix: &str,
    ) -> Result<PredicateQuery, Invalid> {
        let mut fields = FieldErrors::new();
        let mut fail = |name: &str, message: &str| {
            fields.insert(format!("{prefix}{name}"), vec![message.to_string()]);
        };
        let own_text = req.q.map(str::trim).filter(|s| !s.is_empty());
        if own_text.is_some_and(|t| t.chars().nth(MAX_TEXT_CHARS).is_some()) {
            fail("q", &format!("at most {MAX_TEXT_CHARS} characters"));
        }
        // A default text is the subject's own description: bounded by cutting, not refused.
        let text = own_text
            .or_else(|| defaults.text.map(str::trim).filter(|s| !s.is_empty()))
            .map(|t| t.chars().take(MAX_TEXT_CHARS).collect::<String>());
        let product_code = match req.product_code {
            Some(code) => {
                let parsed = ProductCode::parse(code);
                if parsed.is_none() {
                    fail("product_code", "must be three capital letters, e.g. FRN");
                }
                parsed
            }
            // A stored default was validated when it was stored.
            None => defaults.product_code.and_then(ProductCode::parse),
        };
        let from = date(req.decision_date_from, "decision_date_from", &mut fail);
        let to = date(req.decision_date_to, "decision_date_to", &mut fail);
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                fail("decision_date_to", "must not be before decision_date_from");
            }
        }
        let limit = req.limit.unwrap_or(defaults.limit as i64);
        if !(1..=100).contains(&limit) {
            fail("limit", "must be between 1 and 100");
        }
        if fields.is_empty() {
            match (&text, &product_code) {
                (None, None) => {
                    fields.insert(
                        format!("{prefix}q"),
                        vec!["q or product_code is required".into()],
                    );
                }
                (Some(t), None) if significant_words(t).is_empty() => {
                    fields.insert(
                        format!("{prefix}q"),
                        vec!["has no searchable words; describe the device".into()],
                    );
                }
                _ => {}
            }
        }
        Invalid::check(fields)?;
        Ok(PredicateQuery {
            text,
            product_code,
            decision_date_from: from,
            decision_date_to: to,
            // In 1..=100 after the check above.
            limit: limit as usize,
            as_of: None,
        })
    }
}

/// A date exactly as JSON Schema's `date` format reads it: `YYYY-MM-DD`, four-digit year, a real
/// day. chrono alone would also take one-digit months and signed or longer years.
fn date(raw: Option<&str>, name: &str, fail: &mut impl FnMut(&str, &str)) -> Option<NaiveDate> {
    let raw = raw?;
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if shaped => Some(d),
        _ => {
            fail(name, "must be a date YYYY-MM-DD");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: SearchDefaults<'static> = SearchDefaults {
        text: None,
        product_code: None,
        limit: 50,
    };

    fn parse(req: SearchRequest<'_>) -> Result<PredicateQuery, Invalid> {
        PredicateQuery::parse(&req, &GET, "")
    }

    #[test]
    fn dates_are_full_dates_only() {
        let at = |d: &str| {
            parse(SearchRequest {
                product_code: Some("FRN"),
                decision_date_from: Some(d),
                ..SearchRequest::default()
            })
            .ok()
            .and_then(|q| q.decision_date_from)
        };
        assert_eq!(at("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in [
            "2023-02-29",
            "2024-1-05",
            "+2024-01-05",
            "12024-01-05",
            "2024-13-01",
            " 2024-01-05",
            "",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_are_exact() {
        let padded = parse(SearchRequest {
            product_code: Some(" FRN"),
            ..SearchRequest::default()
        });
        assert!(padded.is_err());
    }

    #[test]
    fn over_long_text_is_refused_and_a_default_text_is_cut() {
        let long = "pump ".repeat(500);
        let Err(Invalid(fields)) = PredicateQuery::parse(
            &SearchRequest {
                q: Some(&long),
                ..SearchRequest::default()
            },
            &GET,
            "parameters.",
        ) else {
            panic!("an over-long q was accepted")
        };
        assert!(fields.contains_key("parameters.q"), "{fields:?}");
        let cut = PredicateQuery::parse(
            &SearchRequest::default(),
            &SearchDefaults {
                text: Some(&long),
                ..GET
            },
            "",
        )
        .unwrap();
        assert_eq!(cut.text.map(|t| t.chars().count()), Some(MAX_TEXT_CHARS));
    }

    #[test]
    fn text_without_searchable_words_needs_a_product_code() {
        let wordless = SearchRequest {
            q: Some("the ... and 42"),
            ..SearchRequest::default()
        };
        assert!(parse(wordless).is_err());
        let coded = SearchRequest {
            product_code: Some("FRN"),
            ..wordless
        };
        assert_eq!(parse(coded).unwrap().product_code.as_deref(), Some("FRN"));
    }
}
