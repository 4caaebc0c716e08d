//! Value parsers for the numbers a command line sets: each accepts a bounded range and refuses
//! anything else as a usage error (exit 2) that names the range, before any work is done; and
//! the flag group `eval` and `judge` share ([`VerifiedWorldArgs`]), the two models of `plan`
//! and `rollout` ([`PairArgs`]), and the refusal to replace a file ([`check_output`]).

use crate::predict_cmd::load;
use anyhow::{Context, Result};
use clap::Args;
use dynaboot::model::explainer::MAX_PROPOSALS;
use dynaboot::model::verifier::MAX_N;
use dynaboot::model::{DynamicsModel, WorldModel};
use std::path::{Path, PathBuf};

/// A whole number in `range`, or a message naming it (and `hint`).
fn whole(s: &str, range: std::ops::RangeInclusive<usize>, hint: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: use a whole number from {} to {}{hint}",
            range.start(),
            range.end()
        )),
    }
}

/// A number in `range`, or a message naming it (and `hint`).
fn real(s: &str, range: std::ops::RangeInclusive<f64>, hint: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if range.contains(&x) => Ok(x),
        _ => Err(format!(
            "{s:?}: use a number from {} to {}{hint}",
            range.start(),
            range.end()
        )),
    }
}

/// Most of anything a count flag sets (rows, videos, seeds, candidates per family, raters).
const MAX_COUNT: usize = 1_000_000;
/// Most optimiser steps a run may ask for.
const MAX_STEPS: usize = 100_000_000;

/// `--temperature`: 0 (greedy) to 10.
pub fn temperature(s: &str) -> Result<f64, String> {
    real(
        s,
        0.0..=10.0,
        " (0 is greedy; any positive number samples, 1 as in the paper)",
    )
}

/// `--top-p`: a probability in (0, 1].
pub fn top_p(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(format!(
            "{s:?}: top-p is a probability above 0, at most 1 (1 keeps all tokens)"
        )),
    }
}

/// `--n`: candidates of a best-of-N, 1 to [`MAX_N`].
pub fn candidates(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_N).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: choose 1 to {MAX_N} candidates (best-of-8 is the paper's setting)"
        )),
    }
}

/// `--proposals`: explanations proposed per pair for a world model to check.
pub fn proposals(s: &str) -> Result<usize, String> {
    whole(s, 1..=MAX_PROPOSALS, " (8 is the tuned setting)")
}

/// A weight of a score's term: 0 to 1000.
pub fn weight(s: &str) -> Result<f32, String> {
    real(s, 0.0..=1000.0, "").map(|w| w as f32)
}

/// `--addr`: HOST:PORT, the host an IP address or a name (`localhost:8090`), resolved here;
/// a name's IPv4 address first.
pub fn socket_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let hint = "use HOST:PORT, e.g. 127.0.0.1:8090 or localhost:8090";
    let found: Vec<std::net::SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}; {hint}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{s:?} names no address; {hint}"))
}

/// A count: 1 to a million.
pub fn count(s: &str) -> Result<usize, String> {
    whole(s, 1..=MAX_COUNT, "")
}

/// A count that may be 0: 0 to a million.
pub fn count_or_zero(s: &str) -> Result<usize, String> {
    whole(s, 0..=MAX_COUNT, "")
}

/// Optimiser steps (or steps between checkpoints, evaluations): 1 to 100 million.
pub fn steps(s: &str) -> Result<usize, String> {
    whole(s, 1..=MAX_STEPS, " steps")
}

/// Steps between evaluations or checkpoints: 0 (only at the end) to 100 million.
pub fn every(s: &str) -> Result<usize, String> {
    whole(s, 0..=MAX_STEPS, " steps (0: only at the end)")
}

/// `--top-k`: 0 (every token) to 65,536.
pub fn top_k(s: &str) -> Result<usize, String> {
    whole(s, 0..=65_536, " (0 keeps every token)")
}

/// `--seeds` of a study: 1 to 1000 runs.
pub fn seeds(s: &str) -> Result<u64, String> {
    whole(s, 1..=1000, " seeds").map(|n| n as u64)
}

/// `--rpm`: requests per minute, 0.01 to 100,000.
pub fn requests_per_minute(s: &str) -> Result<f64, String> {
    real(s, 0.01..=100_000.0, " requests per minute")
}

/// `--timeout-s`: 1 second to a day.
pub fn timeout_s(s: &str) -> Result<u64, String> {
    whole(s, 1..=86_400, " seconds").map(|n| n as u64)
}

/// `--retries`: 0 to 100.
pub fn retries(s: &str) -> Result<usize, String> {
    whole(s, 0..=100, " retries")
}

/// `--concurrency`: 1 to 256 requests at once.
pub fn concurrency(s: &str) -> Result<usize, String> {
    whole(s, 1..=256, " requests at once")
}

/// A simulated rater's noise: 0 to 10 judge points.
pub fn score_noise(s: &str) -> Result<f64, String> {
    real(s, 0.0..=10.0, " judge points")
}

/// Channels of a convolution: 1 to 4096.
pub fn channels(s: &str) -> Result<usize, String> {
    whole(s, 1..=4096, " channels")
}

/// An image tokenizer's codebook: 2 to 65,536 codes.
pub fn codebook(s: &str) -> Result<usize, String> {
    whole(s, 2..=65_536, " codes")
}

/// Residual blocks of a decoder stage: 0 to 64.
pub fn blocks(s: &str) -> Result<usize, String> {
    whole(s, 0..=64, " blocks")
}

/// `--repeat FAMILY=TIMES`: a family (task) name and how often its examples are seen per
/// epoch (1 to 100).
pub fn repeat(s: &str) -> Result<(String, usize), String> {
    let usage = || {
        format!("{s:?}: write FAMILY=TIMES, e.g. whatsup=2 (TIMES a whole number from 1 to 100)")
    };
    let (family, times) = s.split_once('=').ok_or_else(usage)?;
    match times.parse::<usize>() {
        Ok(t) if (1..=100).contains(&t) && !family.trim().is_empty() => {
            Ok((family.trim().to_string(), t))
        }
        _ => Err(usage()),
    }
}

/// A share in [0, 1] (the weighted loss's λ, a dead-code threshold).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{s:?}: use a number from 0 to 1")),
    }
}

/// A learning rate: positive, finite, at most 1.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(lr) if lr > 0.0 && lr <= 1.0 => Ok(lr),
        _ => Err(format!(
            "{s:?} is not a learning rate: use a positive number up to 1 (1e-3 is typical here)"
        )),
    }
}

/// Sequences or images per batch (or micro-batches per step): what one step holds in memory.
pub fn batch(s: &str) -> Result<usize, String> {
    whole(s, 1..=1024, " (memory grows with it)")
}

/// Rows of a generated dataset.
pub fn rows(s: &str) -> Result<usize, String> {
    whole(
        s,
        1..=1_000_000,
        " per folder (generate several folders with other seeds for more)",
    )
}

/// Side of generated images in pixels.
pub fn image_side(s: &str) -> Result<u32, String> {
    whole(s, 16..=1024, " pixels").map(|n| n as u32)
}

/// A text vocabulary size: the 7 special tokens and 256 bytes, then merges.
pub fn vocab_size(s: &str) -> Result<usize, String> {
    whole(
        s,
        263..=65_536,
        " (7 special tokens and 256 bytes come first)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_a_host_name_and_say_the_form_when_wrong() {
        let local = socket_addr("localhost:8090").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 8090, "{local}");
        assert_eq!(socket_addr("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        let e = socket_addr("localhost").unwrap_err();
        assert!(e.contains("HOST:PORT"), "{e}");
    }

    #[test]
    fn ranges_are_enforced_and_named() {
        assert_eq!(batch("16"), Ok(16));
        for bad in ["0", "1025", "-3", "x", "1e9"] {
            let e = batch(bad).unwrap_err();
            assert!(e.contains("1 to 1024"), "{bad}: {e}");
        }
        assert_eq!(fraction("0.5"), Ok(0.5));
        assert!(fraction("NaN").is_err() && fraction("1.5").is_err() && fraction("-0.1").is_err());
        assert_eq!(learning_rate("1e-3"), Ok(1e-3));
        for bad in ["0", "-1e-3", "NaN", "inf", "2"] {
            assert!(learning_rate(bad).is_err(), "{bad}");
        }
        assert!(rows("1000001").unwrap_err().contains("other seeds"));
        assert_eq!(image_side("64"), Ok(64));
        assert!(image_side("100000").is_err());
        assert!(vocab_size("262").is_err() && vocab_size("448").is_ok());
        assert!(candidates("0").is_err() && candidates("1024").is_ok());
        assert!(proposals("0").is_err() && proposals("65").unwrap_err().contains("1 to 64"));
        assert!(weight("NaN").is_err() && weight("-1").is_err() && weight("0.5") == Ok(0.5));
        assert!(temperature("NaN").is_err() && top_p("0").is_err() && count("0").is_err());
    }
}

/// The world model whose predictions are measured and the dynamics model that verifies its
/// candidates: one flag group for `eval` and `judge`.
#[derive(clap::Args)]
pub struct VerifiedWorldArgs {
    /// World-model checkpoint.
    #[arg(long)]
    pub world: std::path::PathBuf,
    /// Dynamics-model checkpoint: ranks the world model's candidates (best of --n); `eval`
    /// also evaluates it, greedily and with its proposals checked by the world model.
    #[arg(long)]
    pub dynamics: Option<std::path::PathBuf>,
    /// Candidates per row (best-of-N, 1 to 1024) when --dynamics is given.
    #[arg(long, default_value_t = 8, value_parser = candidates)]
    pub n: usize,
}

/// The two models (the shipped pair by default).
#[derive(Args)]
pub struct PairArgs {
    /// World-model checkpoint (default: the shipped `world`).
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// Dynamics-model checkpoint (default: the shipped `dynamics`).
    #[arg(long)]
    pub dynamics: Option<PathBuf>,
}

impl PairArgs {
    pub fn load(&self) -> Result<(WorldModel, DynamicsModel)> {
        let shipped =
            |name: &str| -> Result<PathBuf> { Ok(dynaboot::shipped::shipped_models()?.join(name)) };
        let world = match &self.world {
            Some(p) => p.clone(),
            None => shipped("world")?,
        };
        let dynamics = match &self.dynamics {
            Some(p) => p.clone(),
            None => shipped("dynamics")?,
        };
        Ok((
            WorldModel::new(load(&world)?).context("--world")?,
            DynamicsModel::new(load(&dynamics)?).context("--dynamics")?,
        ))
    }
}

/// The check of every file output, before any work: refuses a path that is not a file (a
/// folder, a device, a named pipe; even with `force`), an existing file unless `force` (the
/// command did not write it), and a folder it cannot write in (probed with a file it removes
/// again). The write itself is atomic (`files::write_atomic`).
pub fn check_output(path: &Path, force: bool, flag: &str) -> Result<()> {
    let shown = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.is_file() {
            anyhow::bail!("{flag} {shown} exists and is not a file; give the path of a file");
        }
        if !force {
            anyhow::bail!(
                "{flag} {shown} already exists; pass --force to replace it, or choose another path"
            );
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{flag} {shown}: cannot make the folder {}", dir.display()))?;
    let probe = dir.join(format!(".dynaboot-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .with_context(|| format!("{flag} {shown}: cannot write in {}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
