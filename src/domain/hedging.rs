//! Hedged result lists: when the likeliest product code is uncertain, the first results also
//! show the best candidate of each other suggested code, so the list holds a usable predicate
//! whichever suggestion is right (a reviewer throws away a list without the device's own code).

use super::ranking::SuggestedCode;

/// How many leading results the hedge fills: what a reviewer reads first.
pub const WINDOW: usize = 5;

/// Reorders `items` (best first) so that the first `window` hold the best item of each
/// suggested code after the first, when the first suggestion is below `confident`. Promoted
/// items take the last places of the window, in suggestion order; the items they displace follow
/// the window in their own order. The first item never moves. Returns the new order and, for
/// each promoted item, its new position and the rank of the suggestion it covers.
pub fn hedge<'a, T>(
    items: Vec<T>,
    window: usize,
    suggested: &[SuggestedCode],
    confident: f64,
    code_of: impl Fn(&T) -> Option<&'a str>,
) -> (Vec<T>, Vec<(usize, usize)>) {
    let window = window.min(items.len());
    let uncertain = suggested.first().is_some_and(|s| s.confidence < confident);
    if !uncertain || window < 2 {
        return (items, Vec::new());
    }
    let mut promoted: Vec<(usize, usize)> = Vec::new(); // (position in `items`, suggestion rank)
    for s in &suggested[1..] {
        if promoted.len() + 1 >= window {
            break;
        }
        // What stays in place if this one is promoted too.
        let kept = window - promoted.len() - 1;
        let best = items
            .iter()
            .position(|item| code_of(item) == Some(s.product_code.as_str()));
        match best {
            Some(pos) if pos >= kept && !promoted.iter().any(|p| p.0 == pos) => {
                promoted.push((pos, s.rank))
            }
            _ => {}
        }
    }
    if promoted.is_empty() {
        return (items, Vec::new());
    }
    let boundary = window - promoted.len();
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut order: Vec<T> = Vec::with_capacity(slots.len());
    order.extend(slots[..boundary].iter_mut().filter_map(Option::take));
    let mut placed = Vec::with_capacity(promoted.len());
    for &(pos, rank) in &promoted {
        if let Some(item) = slots[pos].take() {
            placed.push((order.len(), rank));
            order.push(item);
        }
    }
    order.extend(slots.into_iter().flatten());
    (order, placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestions(confidence: f64) -> Vec<SuggestedCode> {
        ["AAA", "BBB", "CCC"]
            .iter()
            .enumerate()
            .map(|(rank, code)| SuggestedCode {
                product_code: code.to_string(),
                confidence: if rank == 0 { confidence } else { 0.1 },
                rank,
            })
            .collect()
    }

    fn codes(items: &[(&'static str, u32)]) -> Vec<(&'static str, u32)> {
        items.to_vec()
    }

    const LIST: &[(&str, u32)] = &[
        ("AAA", 1),
        ("AAA", 2),
        ("AAA", 3),
        ("AAA", 4),
        ("AAA", 5),
        ("AAA", 6),
        ("CCC", 7),
        ("BBB", 8),
        ("BBB", 9),
    ];

    #[test]
    fn an_uncertain_first_code_makes_room_for_the_others() {
        let (order, placed) = hedge(codes(LIST), 5, &suggestions(0.3), 0.5, |i| Some(i.0));
        let ids: Vec<u32> = order.iter().map(|i| i.1).collect();
        assert_eq!(ids, vec![1, 2, 3, 8, 7, 4, 5, 6, 9]);
        assert_eq!(placed, vec![(3, 1), (4, 2)]);
    }

    #[test]
    fn a_confident_first_code_keeps_the_order() {
        let (order, placed) = hedge(codes(LIST), 5, &suggestions(0.7), 0.5, |i| Some(i.0));
        assert_eq!(order, codes(LIST));
        assert!(placed.is_empty());
    }

    #[test]
    fn codes_already_shown_are_not_moved_and_the_first_never_moves() {
        let list = codes(&[("BBB", 1), ("AAA", 2), ("CCC", 3), ("AAA", 4)]);
        let (order, placed) = hedge(list.clone(), 5, &suggestions(0.2), 0.5, |i| Some(i.0));
        assert_eq!(order, list);
        assert!(placed.is_empty());
        // A window of two keeps the first and promotes only the second suggestion.
        let (order, placed) = hedge(codes(LIST), 2, &suggestions(0.2), 0.5, |i| Some(i.0));
        let ids: Vec<u32> = order.iter().map(|i| i.1).collect();
        assert_eq!(ids, vec![1, 8, 2, 3, 4, 5, 6, 7, 9]);
        assert_eq!(placed, vec![(1, 1)]);
    }

    #[test]
    fn a_code_at_the_edge_of_the_window_stays_shown_when_another_is_promoted() {
        // CCC sits in the last place, which BBB's promotion would take: CCC is promoted too.
        let list = codes(&[
            ("AAA", 1),
            ("AAA", 2),
            ("AAA", 3),
            ("AAA", 4),
            ("CCC", 5),
            ("BBB", 6),
        ]);
        let (order, _) = hedge(list, 5, &suggestions(0.2), 0.5, |i| Some(i.0));
        let head: Vec<&str> = order.iter().take(5).map(|i| i.0).collect();
        assert!(head.contains(&"BBB") && head.contains(&"CCC"), "{head:?}");
    }
}
