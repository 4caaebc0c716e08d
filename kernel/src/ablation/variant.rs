//! The ablation's world models: FT, FDM and FDM without each of its two parts.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// One world model of the ablation: which triplets it is fine-tuned on and with which loss.
/// Written in `results.json` by its [`Variant::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Variant {
    /// The labelled triplets only, the plain loss.
    #[serde(rename = "FT")]
    Ft,
    /// The labelled and the synthetic triplets, the recognition-weighted loss.
    #[serde(rename = "FDM")]
    Fdm,
    /// FDM without the synthetic triplets.
    #[serde(rename = "FDM - synthetic")]
    FdmWithoutSynthetic,
    /// FDM with the plain loss.
    #[serde(rename = "FDM - weighting")]
    FdmWithoutWeighting,
}

impl Variant {
    /// Every world model, in the order the report lists them.
    pub const ALL: [Variant; 4] = [
        Variant::Ft,
        Variant::Fdm,
        Variant::FdmWithoutSynthetic,
        Variant::FdmWithoutWeighting,
    ];

    /// Its name in the report and in `results.json`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Ft => "FT",
            Variant::Fdm => "FDM",
            Variant::FdmWithoutSynthetic => "FDM - synthetic",
            Variant::FdmWithoutWeighting => "FDM - weighting",
        }
    }

    /// Whether it trains on the synthetic triplets besides the labelled ones.
    pub(crate) fn synthetic(self) -> bool {
        matches!(self, Variant::Fdm | Variant::FdmWithoutWeighting)
    }

    /// Whether it trains with the recognition-weighted loss.
    pub(crate) fn weighted(self) -> bool {
        matches!(self, Variant::Fdm | Variant::FdmWithoutSynthetic)
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// By name, so that maps keyed by variant list them in the order `results.json` has always
/// had.
impl Ord for Variant {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Variant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_own_data_and_loss_and_round_trips_by_name() {
        let parts: Vec<(bool, bool)> = Variant::ALL
            .iter()
            .map(|v| (v.synthetic(), v.weighted()))
            .collect();
        assert_eq!(
            parts,
            [(false, false), (true, true), (false, true), (true, false)]
        );
        for v in Variant::ALL {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.name()));
            assert_eq!(serde_json::from_str::<Variant>(&json).unwrap(), v);
        }
        let mut sorted = Variant::ALL.to_vec();
        sorted.sort();
        let names: Vec<&str> = sorted.iter().map(|v| v.name()).collect();
        assert_eq!(names, ["FDM", "FDM - synthetic", "FDM - weighting", "FT"]);
    }
}
