//! FDA identifiers that arrive from users and files: product codes and 510(k) numbers. Each is
//! checked in one place, its type's constructor; a value of the type is valid.

use serde::{Deserialize, Serialize};

/// An FDA product code: three capital letters (e.g. `DQY`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductCode(String);

/// A 510(k) or De Novo number: `K`, `DEN` or `BK` and six digits (e.g. `K872032`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KNumber(String);

macro_rules! identifier {
    ($name:ident, $valid:ident, $what:literal) => {
        impl $name {
            /// The identifier, if `raw` is one (exactly: no trimming, no case folding).
            pub fn parse(raw: &str) -> Option<Self> {
                $valid(raw).then(|| Self(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(raw: String) -> Result<Self, String> {
                if $valid(&raw) {
                    Ok(Self(raw))
                } else {
                    Err(format!("{raw:?} is not {}", $what))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

identifier!(ProductCode, is_product_code, "a product code");
identifier!(KNumber, is_k_number, "a 510(k) number");

/// True for an FDA product code: three capital letters (e.g. `DQY`).
fn is_product_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// True for a 510(k) or De Novo number: `K`, `DEN` or `BK` and six digits (e.g. `K872032`).
fn is_k_number(k: &str) -> bool {
    let digits = k
        .strip_prefix("DEN")
        .or_else(|| k.strip_prefix("BK"))
        .or_else(|| k.strip_prefix('K'));
    matches!(digits, Some(d) if d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_codes() {
        assert!(is_product_code("DQY"));
        for bad in ["dqy", "DQ", "DQYY", "D1Y", "", "DÖY"] {
            assert!(!is_product_code(bad), "{bad}");
        }
    }

    #[test]
    fn only_valid_identifiers_are_built() {
        assert_eq!(ProductCode::parse("DQY").as_deref(), Some("DQY"));
        assert!(ProductCode::parse("dqy").is_none());
        assert!(KNumber::try_from("K87203".to_string()).is_err());
        let k: KNumber = serde_json::from_str("\"DEN210032\"").unwrap();
        assert_eq!(k.as_str(), "DEN210032");
        assert!(serde_json::from_str::<ProductCode>("\"FR\"").is_err());
    }

    #[test]
    fn k_numbers() {
        for good in ["K872032", "DEN210032", "BK123456"] {
            assert!(is_k_number(good), "{good}");
        }
        for bad in [
            "K87203",
            "k872032",
            "KK72032",
            "DEN21003X",
            "P123456",
            "K8720321",
        ] {
            assert!(!is_k_number(bad), "{bad}");
        }
    }
}
