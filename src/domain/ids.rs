//! FDA identifiers that arrive from users: product codes and 510(k) numbers.

/// True for an FDA product code: three capital letters (e.g. `DQY`).
pub fn is_product_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// True for a 510(k) or De Novo number: `K`, `DEN` or `BK` and six digits (e.g. `K872032`).
pub fn is_k_number(k: &str) -> bool {
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
