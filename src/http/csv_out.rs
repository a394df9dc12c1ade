//! The one CSV writer of the exports: RFC 4180 with CRLF, every cell neutralised for spreadsheets.

use std::borrow::Cow;

/// A cell as a spreadsheet may safely open it: text starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return would be read as a formula (CSV injection, OWASP), so it gets a leading `'`,
/// which spreadsheets show as "this is text". Every other cell is unchanged.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Rows written through [`neutralise`] into memory.
pub struct CsvOut(csv::Writer<Vec<u8>>);

impl Default for CsvOut {
    fn default() -> Self {
        CsvOut(
            csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new()),
        )
    }
}

impl CsvOut {
    /// Writes one row, each cell neutralised.
    pub fn row<I>(&mut self, cells: I) -> Result<(), csv::Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.0.write_record(
            cells
                .into_iter()
                .map(|c| neutralise(c.as_ref()).into_owned()),
        )
    }

    /// The text written so far.
    pub fn finish(self) -> Result<String, csv::Error> {
        let bytes = self.0.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_leading_quote() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
            ("'quoted", "'quoted"),
        ] {
            assert_eq!(neutralise(cell), shown, "{cell:?}");
        }
    }

    #[test]
    fn rows_are_rfc4180_with_neutralised_cells() {
        let mut out = CsvOut::default();
        out.row(["a", "=1+2", "x,y"]).unwrap();
        assert_eq!(out.finish().unwrap(), "a,'=1+2,\"x,y\"\r\n");
    }
}
