//! The paper's "stratified top-K" filter: sort annotations by the annotator's likelihood, then
//! pick round-robin across action classes until K are kept, so frequent easy actions cannot
//! crowd out the rest.

use std::collections::BTreeMap;

/// Indices of the kept items: `items` are `(class, likelihood)`; each round takes the most likely
/// remaining item of every class (classes in name order), until `k` are kept or none remain.
pub(crate) fn stratified_top_k(items: &[(String, f32)], k: usize) -> Vec<usize> {
    let mut classes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (class, _)) in items.iter().enumerate() {
        classes.entry(class.as_str()).or_default().push(i);
    }
    for idx in classes.values_mut() {
        idx.sort_by(|&a, &b| items[b].1.total_cmp(&items[a].1).then(a.cmp(&b)));
    }
    let mut kept = Vec::with_capacity(k.min(items.len()));
    for round in 0.. {
        let mut any = false;
        for idx in classes.values() {
            if let Some(&i) = idx.get(round) {
                if kept.len() == k {
                    return kept;
                }
                kept.push(i);
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(spec: &[(&str, f32)]) -> Vec<(String, f32)> {
        spec.iter().map(|(c, l)| (c.to_string(), *l)).collect()
    }

    #[test]
    fn balanced_across_classes_best_first() {
        // 6 "move" (all likelier than anything else), 2 "open", 1 "remove".
        let it = items(&[
            ("move", -0.1),
            ("move", -0.2),
            ("move", -0.3),
            ("move", -0.4),
            ("move", -0.5),
            ("move", -0.6),
            ("open", -2.0),
            ("open", -1.0),
            ("remove", -3.0),
        ]);
        let kept = stratified_top_k(&it, 6);
        let count = |c: &str| kept.iter().filter(|&&i| it[i].0 == c).count();
        assert_eq!((count("move"), count("open"), count("remove")), (3, 2, 1));
        // The best of each class comes first, in rounds.
        assert_eq!(&kept[..3], &[0, 7, 8]);
        // Plain top-6 by likelihood would have kept "move" only.
    }

    #[test]
    fn k_beyond_the_items_keeps_all_once() {
        let it = items(&[("a", -1.0), ("b", -1.0), ("a", -2.0)]);
        let mut kept = stratified_top_k(&it, 10);
        kept.sort();
        assert_eq!(kept, vec![0, 1, 2]);
        assert!(stratified_top_k(&it, 0).is_empty());
    }
}
