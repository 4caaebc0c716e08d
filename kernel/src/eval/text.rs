//! Text metrics of generated actions against reference actions: BLEU-4 (Papineni et al. 2002;
//! corpus level, and sentence level with add-one smoothing of the 2- to 4-gram precisions, Lin &
//! Och 2004) and ROUGE-L (F1 of the longest common subsequence, Lin 2004). Words are lower-cased
//! runs of letters and digits.

use std::collections::HashMap;

/// Lower-cased words: maximal runs of alphanumeric characters.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn ngrams(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    for g in words.windows(n) {
        *m.entry(g).or_insert(0) += 1;
    }
    m
}

/// Clipped n-gram matches and candidate n-gram count, for n = 1..=4.
fn matches(candidate: &[String], reference: &[String]) -> [(usize, usize); 4] {
    std::array::from_fn(|i| {
        let n = i + 1;
        let (c, r) = (ngrams(candidate, n), ngrams(reference, n));
        let hits = c
            .iter()
            .map(|(g, &k)| k.min(r.get(g).copied().unwrap_or(0)))
            .sum();
        (hits, candidate.len().saturating_sub(n - 1))
    })
}

fn brevity_penalty(candidate_len: usize, reference_len: usize) -> f64 {
    if candidate_len == 0 {
        0.0
    } else if candidate_len >= reference_len {
        1.0
    } else {
        (1.0 - reference_len as f64 / candidate_len as f64).exp()
    }
}

/// Corpus BLEU-4 over (candidate, reference) pairs, one reference each, in 0..1.
pub(crate) fn corpus_bleu(pairs: &[(&str, &str)]) -> f64 {
    let (mut hits, mut totals, mut c_len, mut r_len) = ([0usize; 4], [0usize; 4], 0, 0);
    for (c, r) in pairs {
        let (c, r) = (words(c), words(r));
        for (i, (h, t)) in matches(&c, &r).into_iter().enumerate() {
            hits[i] += h;
            totals[i] += t;
        }
        c_len += c.len();
        r_len += r.len();
    }
    if hits.contains(&0) {
        return 0.0;
    }
    let log_p: f64 = (0..4)
        .map(|i| (hits[i] as f64 / totals[i] as f64).ln())
        .sum::<f64>()
        / 4.0;
    brevity_penalty(c_len, r_len) * log_p.exp()
}

/// Sentence BLEU-4 with add-one smoothing of the 2- to 4-gram precisions, in 0..1.
pub(crate) fn sentence_bleu(candidate: &str, reference: &str) -> f64 {
    let (c, r) = (words(candidate), words(reference));
    let m = matches(&c, &r);
    if c.is_empty() || m[0].0 == 0 {
        return 0.0;
    }
    let log_p: f64 = m
        .iter()
        .enumerate()
        .map(|(i, &(h, t))| {
            let add = if i == 0 { 0.0 } else { 1.0 };
            ((h as f64 + add) / (t as f64 + add)).ln()
        })
        .sum::<f64>()
        / 4.0;
    brevity_penalty(c.len(), r.len()) * log_p.exp()
}

/// ROUGE-L F1 (β = 1) of the longest common word subsequence, in 0..1.
pub(crate) fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let (c, r) = (words(candidate), words(reference));
    if c.is_empty() || r.is_empty() {
        return 0.0;
    }
    let mut row = vec![0usize; r.len() + 1];
    for cw in &c {
        let mut diag = 0;
        for (j, rw) in r.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if cw == rw { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    let lcs = row[r.len()] as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let (p, rec) = (lcs / c.len() as f64, lcs / r.len() as f64);
    2.0 * p * rec / (p + rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn identical_sentences_score_one_and_disjoint_zero() {
        let s = "put the red cube into the blue bowl";
        assert!(close(sentence_bleu(s, s), 1.0));
        assert!(close(corpus_bleu(&[(s, s)]), 1.0));
        assert!(close(rouge_l(s, s), 1.0));
        assert_eq!(sentence_bleu("open it", "close that"), 0.0);
        assert_eq!(rouge_l("open it", "close that"), 0.0);
        assert_eq!(rouge_l("", s), 0.0);
    }

    #[test]
    fn bleu_by_hand() {
        // Candidate "the cat sat on the mat" (6 words) against "the cat is on the mat" (6):
        // 1-grams 5/6, 2-grams 3/5 (the cat, on the, the mat), 3-grams 1/4 (on the mat),
        // 4-grams 0/3. Corpus BLEU is 0 (a zero precision); sentence BLEU smooths 2-4-grams:
        // exp((ln 5/6 + ln 4/6 + ln 2/5 + ln 1/4) / 4), brevity penalty 1.
        let (c, r) = ("the cat sat on the mat", "The cat is on the mat.");
        assert_eq!(corpus_bleu(&[(c, r)]), 0.0);
        let want =
            ((5.0f64 / 6.0).ln() + (4.0f64 / 6.0).ln() + (0.4f64).ln() + (0.25f64).ln()) / 4.0;
        assert!(close(sentence_bleu(c, r), want.exp()));
        // Brevity: "the cat" against the 6-word reference: 1- and 2-gram precision 1,
        // smoothed 3- and 4-grams (0+1)/(0+1) = 1, penalty exp(1 - 6/2).
        assert!(close(sentence_bleu("the cat", r), (1.0f64 - 3.0).exp()));
    }

    #[test]
    fn corpus_bleu_pools_counts() {
        let a = "move the red cube to the left";
        let b = "turn the green bowl upside down";
        // Two identical pairs pool to precision 1 everywhere.
        assert!(close(corpus_bleu(&[(a, a), (b, b)]), 1.0));
        // One wrong pair lowers it but keeps it positive (the other supplies every n-gram order).
        let v = corpus_bleu(&[(a, a), (b, "turn the green bowl over")]);
        assert!(v > 0.3 && v < 1.0, "{v}");
    }

    #[test]
    fn rouge_l_by_hand() {
        // LCS of "a b c d" and "a c b d" is 3 words: P = R = 3/4, F1 = 3/4.
        assert!(close(rouge_l("a b c d", "a c b d"), 0.75));
        // "a b" vs "a b c d": LCS 2, P = 1, R = 1/2, F1 = 2/3.
        assert!(close(rouge_l("a b", "a b c d"), 2.0 / 3.0));
    }
}
