//! The human evaluation's statistics against SciPy: `stats::wilcoxon::signed_rank` on the fixed
//! paired differences of `fixtures/stats/wilcoxon.json` (written by the script beside it with
//! `scipy.stats.wilcoxon`) gives SciPy's statistic and p-value for every case: exact,
//! sign-flip and normal-approximation paths, Wilcoxon's and Pratt's treatment of zeros; and
//! `stats::agreement::spearman` gives `scipy.stats.spearmanr`'s rho.

use dynaboot::stats::agreement::spearman;
use dynaboot::stats::wilcoxon::{Method, Zeros, signed_rank};
use serde_json::Value;

#[test]
fn wilcoxon_matches_scipy_on_the_fixture() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stats/wilcoxon.json"),
    )
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 14, "{} cases", cases.len());
    let mut methods = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let zeros = match case["zero_method"].as_str().unwrap() {
            "wilcox" => Zeros::Wilcox,
            "pratt" => Zeros::Pratt,
            other => panic!("{other}"),
        };
        let d: Vec<f64> = case["d"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = signed_rank(&d, zeros).unwrap();
        let (stat, p) = (
            case["statistic"].as_f64().unwrap(),
            case["pvalue"].as_f64().unwrap(),
        );
        assert!(
            (got.statistic - stat).abs() < 1e-9,
            "{name} {zeros:?}: statistic {} vs SciPy {stat}",
            got.statistic
        );
        assert!(
            (got.p_value - p).abs() <= 1e-9 + 1e-9 * p,
            "{name} {zeros:?} ({:?}): p {} vs SciPy {p}",
            got.method,
            got.p_value
        );
        methods.insert(format!("{:?}", got.method));
    }
    // Every path was exercised.
    for m in [Method::Exact, Method::Permutation, Method::Normal] {
        assert!(methods.contains(&format!("{m:?}")), "{methods:?}");
    }
}

#[test]
fn spearman_matches_scipy_on_the_fixture() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stats/wilcoxon.json"),
    )
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["spearman"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for case in cases {
        let got = spearman(&floats(&case["a"]), &floats(&case["b"])).unwrap();
        let want = case["rho"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "{}: {got} vs SciPy {want}",
            case["name"]
        );
    }
}
