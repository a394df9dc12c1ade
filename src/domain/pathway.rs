//! The premarket pathway of a product code and the CFR sections of its regulation (pure).

/// The premarket pathway for a new device under a product code, with the reason.
///
/// `submission_type_id` in FDA's file: 1 510(k), 2 PMA, 3 Contact ODE, 4 510(k) exempt (the
/// documented values); the file also uses 6 for HDE codes (all lowercase-`f` codes carry it),
/// 7 for kits and research-use codes under enforcement discretion, and 8 for emergency-use codes.
pub fn pathway(
    class: &str,
    submission_type_id: Option<&str>,
    clearances: u32,
) -> (&'static str, String) {
    let sub = submission_type_id.unwrap_or("");
    match (class, sub) {
        ("F", _) | (_, "6") => (
            "PMA",
            "a Humanitarian Device Exemption (HDE) code: the application follows the PMA route".into(),
        ),
        ("3", _) | (_, "2") => ("PMA", "class III: premarket approval (PMA) is required".into()),
        (_, "4") => (
            "Exempt",
            format!("FDA lists this class {class} code as 510(k) exempt (check the exemption's limitations in the regulation)"),
        ),
        ("1", "7") => (
            "Exempt",
            "class I code under FDA enforcement discretion: no 510(k) expected (confirm the kit's components)".into(),
        ),
        (_, "8") => (
            "De Novo",
            "only emergency-use authorisations exist for this code: lasting marketing needs a De Novo request (or a 510(k) if a predicate exists)".into(),
        ),
        ("N" | "U", _) if clearances == 0 => (
            "De Novo",
            "no classification regulation and no cleared 510(k) under this code: a De Novo request is the likely route".into(),
        ),
        _ => ("510k", format!("class {class}: premarket notification, 510(k), against a predicate")),
    }
}

/// `["21 CFR 880.5725"]` from a regulation number, empty when there is none.
pub fn cfr_sections(regulation_number: Option<&str>) -> Vec<String> {
    regulation_number
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| vec![format!("21 CFR {r}")])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathways() {
        assert_eq!(pathway("3", Some("2"), 0).0, "PMA");
        assert_eq!(pathway("F", Some("6"), 0).0, "PMA");
        assert_eq!(pathway("1", Some("4"), 10).0, "Exempt");
        assert_eq!(pathway("2", Some("4"), 10).0, "Exempt");
        assert_eq!(pathway("2", Some("1"), 10).0, "510k");
        assert_eq!(pathway("N", None, 0).0, "De Novo");
        assert_eq!(pathway("U", Some("1"), 5).0, "510k");
        assert!(cfr_sections(Some("")).is_empty());
    }
}
