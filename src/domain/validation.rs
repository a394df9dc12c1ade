//! Validation failures of input, free of any transport: field name -> messages. The web layer
//! answers them as 422 with the one error body.

use std::collections::BTreeMap;

/// Field name -> messages.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Input that broke one or more rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub FieldErrors);

impl Invalid {
    /// One field, one message.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), vec![message.into()]);
        Invalid(fields)
    }

    /// `Ok` when nothing was collected.
    pub fn check(fields: FieldErrors) -> Result<(), Self> {
        if fields.is_empty() {
            Ok(())
        } else {
            Err(Invalid(fields))
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
            .collect();
        write!(f, "invalid input ({})", parts.join(", "))
    }
}

impl std::error::Error for Invalid {}
