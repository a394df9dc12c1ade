//! An inverted index scored with BM25 (the formula of `text::Bm25`), for collections too large to
//! score document by document: a query only touches the postings of its own terms.
//!
//! Stored flat: the sorted terms back to back in one string and the postings in two vectors, so a
//! vocabulary of a few hundred thousand terms (word pairs of 56k device names) costs a few bytes
//! a term instead of two heap allocations each.

use std::cmp::Ordering;
use std::collections::HashMap;

/// An inverted index with BM25 (k1 = 1.2, b = 0.75, the formula of `text::Bm25`).
pub struct Postings {
    /// Every term's text in sorted order, back to back.
    text: String,
    /// Term i's text is `text[ends[i-1].0..ends[i].0]`, its postings `docs[ends[i-1].1..ends[i].1]`.
    ends: Vec<(u32, u32)>,
    /// Postings grouped by term, in document order: the document and the term's count in it.
    docs: Vec<u32>,
    counts: Vec<u16>,
    doc_len: Vec<f32>,
    avg_len: f64,
}

impl Postings {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;

    pub fn build(docs: impl Iterator<Item = Vec<String>>) -> Self {
        let mut by_term: HashMap<String, Vec<(u32, u16)>> = HashMap::new();
        let mut doc_len = Vec::new();
        for (id, doc) in docs.enumerate() {
            let mut tf: HashMap<&str, u16> = HashMap::new();
            for t in &doc {
                let n = tf.entry(t.as_str()).or_default();
                *n = n.saturating_add(1);
            }
            for (t, n) in tf {
                by_term
                    .entry(t.to_string())
                    .or_default()
                    .push((id as u32, n));
            }
            doc_len.push(doc.len() as f32);
        }
        let total: f64 = doc_len.iter().map(|&l| f64::from(l)).sum();
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            (total / doc_len.len() as f64).max(1.0)
        };
        let mut terms: Vec<(String, Vec<(u32, u16)>)> = by_term.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let text_len = terms.iter().map(|(t, _)| t.len()).sum();
        let postings_len = terms.iter().map(|(_, p)| p.len()).sum();
        let mut flat = Postings {
            text: String::with_capacity(text_len),
            ends: Vec::with_capacity(terms.len()),
            docs: Vec::with_capacity(postings_len),
            counts: Vec::with_capacity(postings_len),
            doc_len,
            avg_len,
        };
        for (term, list) in terms {
            flat.text.push_str(&term);
            for (doc, n) in list {
                flat.docs.push(doc);
                flat.counts.push(n);
            }
            // Sizes past u32 (4 GiB of terms) are not a classification table's.
            flat.ends
                .push((flat.text.len() as u32, flat.docs.len() as u32));
        }
        flat
    }

    /// Where term `i`'s text and postings start.
    fn starts(&self, i: usize) -> (usize, usize) {
        match i.checked_sub(1) {
            Some(before) => (self.ends[before].0 as usize, self.ends[before].1 as usize),
            None => (0, 0),
        }
    }

    /// The range of `docs`/`counts` holding `term`'s postings (empty when it is unknown).
    fn find(&self, term: &str) -> std::ops::Range<usize> {
        let (mut low, mut high) = (0, self.ends.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let (text_start, postings_start) = self.starts(mid);
            let (text_end, postings_end) = self.ends[mid];
            let here = self
                .text
                .get(text_start..text_end as usize)
                .unwrap_or_default();
            match here.cmp(term) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                Ordering::Equal => return postings_start..postings_end as usize,
            }
        }
        0..0
    }

    pub fn idf(&self, term: &str) -> f64 {
        let n = self.doc_len.len() as f64;
        let df = self.find(term).len() as f64;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The score a document matching every query term once would get: normalises to ~0..1.
    pub fn ideal(&self, query: &[String]) -> f64 {
        query.iter().map(|t| self.idf(t)).sum::<f64>().max(1e-9)
    }

    /// Adds each matching document's BM25 score to `acc`.
    pub fn score_into(&self, query: &[String], acc: &mut HashMap<u32, f64>) {
        for term in query {
            let range = self.find(term);
            if range.is_empty() {
                continue;
            }
            let idf = self.idf(term);
            for (&doc, &tf) in self.docs[range.clone()].iter().zip(&self.counts[range]) {
                let tf = f64::from(tf);
                let len = f64::from(self.doc_len[doc as usize]);
                let norm = 1.0 - Self::B + Self::B * len / self.avg_len;
                *acc.entry(doc).or_default() +=
                    idf * tf * (Self::K1 + 1.0) / (tf + Self::K1 * norm);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text::Bm25;

    fn docs() -> Vec<Vec<String>> {
        [
            "infusion pump infusion",
            "pump set",
            "catheter",
            "blood glucose meter",
            "",
            "glucose test strip glucose",
        ]
        .iter()
        .map(|d| d.split_whitespace().map(String::from).collect())
        .collect()
    }

    #[test]
    fn scores_as_the_document_by_document_bm25() {
        let docs = docs();
        let flat = Postings::build(docs.clone().into_iter());
        let reference = Bm25::new(&docs);
        for query in [
            vec!["pump"],
            vec!["glucose", "meter"],
            vec!["infusion", "catheter", "absent"],
            vec!["a"],
            vec!["zzz"],
        ] {
            let query: Vec<String> = query.into_iter().map(String::from).collect();
            let mut acc = HashMap::new();
            flat.score_into(&query, &mut acc);
            for (doc, _) in docs.iter().enumerate() {
                let got = acc.get(&(doc as u32)).copied().unwrap_or(0.0);
                let want = reference.score(&query, doc);
                assert!(
                    (got - want).abs() < 1e-9,
                    "{query:?} doc {doc}: {got} vs {want}"
                );
            }
            assert!((flat.ideal(&query) - reference.ideal(&query)).abs() < 1e-9);
        }
    }

    #[test]
    fn finds_every_term_and_no_other() {
        let flat = Postings::build(docs().into_iter());
        for (term, df) in [
            ("blood", 1),
            ("glucose", 2),
            ("pump", 2),
            ("strip", 1),
            ("test", 1),
        ] {
            assert_eq!(flat.find(term).len(), df, "{term}");
        }
        for absent in ["", "aaa", "glucos", "glucosee", "zzzz"] {
            assert!(flat.find(absent).is_empty(), "{absent}");
        }
        assert!(Postings::build(std::iter::empty()).find("pump").is_empty());
    }
}
