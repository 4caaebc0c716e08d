//! What a rater sees: the items in an order of their own, and each item's candidates shuffled
//! anew for them, both fixed by the rater's seed so a reload or a resumed session shows the same.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The items (ids) in the order `seed`'s rater rates them.
#[cfg(any(feature = "serve", test))]
pub(crate) fn item_order(items: &[i64], seed: u64) -> Vec<i64> {
    let mut order = items.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// The systems (ids) in the order their candidates of `item` are shown to `seed`'s rater.
pub(crate) fn candidate_order(systems: &[i64], seed: u64, item: i64) -> Vec<i64> {
    let mut order = systems.to_vec();
    let stream = seed ^ (item as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(stream));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_permutations_fixed_by_the_seed_and_differ_between_raters() {
        let items: Vec<i64> = (1..=40).collect();
        let a = item_order(&items, 7);
        assert_eq!(a, item_order(&items, 7));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, items);
        assert_ne!(a, item_order(&items, 8));
        assert_ne!(a, items);

        // Over many items, each system is shown first about equally often.
        let systems = [1, 2, 3, 4];
        let mut first = [0usize; 4];
        for item in 0..4000 {
            let o = candidate_order(&systems, 7, item);
            first[(o[0] - 1) as usize] += 1;
        }
        assert!(first.iter().all(|&n| (850..1150).contains(&n)), "{first:?}");
        assert_eq!(
            candidate_order(&systems, 7, 3),
            candidate_order(&systems, 7, 3)
        );
    }
}
