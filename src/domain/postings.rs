//! An inverted index scored with BM25 (the formula of `text::Bm25`), for collections too large to
//! score document by document: a query only touches the postings of its own terms.

use std::collections::HashMap;

/// An inverted index with BM25 (k1 = 1.2, b = 0.75, the formula of `text::Bm25`).
pub struct Postings {
    postings: HashMap<String, Vec<(u32, u16)>>,
    doc_len: Vec<f32>,
    avg_len: f64,
}

impl Postings {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;

    pub fn build(docs: impl Iterator<Item = Vec<String>>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u16)>> = HashMap::new();
        let mut doc_len = Vec::new();
        for (id, doc) in docs.enumerate() {
            let mut tf: HashMap<&str, u16> = HashMap::new();
            for t in &doc {
                let n = tf.entry(t.as_str()).or_default();
                *n = n.saturating_add(1);
            }
            for (t, n) in tf {
                postings
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
        Postings {
            postings,
            doc_len,
            avg_len,
        }
    }

    pub fn idf(&self, term: &str) -> f64 {
        let n = self.doc_len.len() as f64;
        let df = self.postings.get(term).map_or(0, Vec::len) as f64;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The score a document matching every query term once would get: normalises to ~0..1.
    pub fn ideal(&self, query: &[String]) -> f64 {
        query.iter().map(|t| self.idf(t)).sum::<f64>().max(1e-9)
    }

    /// Adds each matching document's BM25 score to `acc`.
    pub fn score_into(&self, query: &[String], acc: &mut HashMap<u32, f64>) {
        for term in query {
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let idf = self.idf(term);
            for &(doc, tf) in list {
                let tf = f64::from(tf);
                let len = f64::from(self.doc_len[doc as usize]);
                let norm = 1.0 - Self::B + Self::B * len / self.avg_len;
                *acc.entry(doc).or_default() +=
                    idf * tf * (Self::K1 + 1.0) / (tf + Self::K1 * norm);
            }
        }
    }
}
