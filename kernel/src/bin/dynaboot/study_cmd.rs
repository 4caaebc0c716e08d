//! `dynaboot study ...`: the paper's human evaluation. `create` generates every system's
//! candidates once into one SQLite file, `rater` adds a rater and prints their link, `serve`
//! runs the rating page, `report` analyses the judgments (scores with intervals, Wilcoxon tests
//! with Holm's correction, agreement between raters).

use crate::predict_cmd::{SamplingArgs, load};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use dynaboot::data::AuroraDataset;
use dynaboot::eval::Judge;
use dynaboot::eval::{EvalItem, first_per_family, load_items, test_split_items};
use dynaboot::files::write_atomic;
use dynaboot::model::{DynamicsModel, WorldModel};
use dynaboot::study::report::{pairs_table, systems_table};
use dynaboot::study::server::{rater_link, serve};
use dynaboot::study::{
    Contender, Study, analyse, exact_scores, report_html, simulate_raters, study_items,
};
use dynaboot::world::{Recogniser, RenderConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Create a study: every system's candidate for each item, stored in one SQLite file.
    Create {
        /// The study file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// A system, `NAME=WORLD` (one sample) or `NAME=WORLD,dynamics=DYNAMICS,n=8`
        /// (best of n ranked by the dynamics model). Repeat for each system.
        #[arg(
            long = "system",
            value_name = "NAME=WORLD[,dynamics=D][,n=N]",
            required = true
        )]
        systems: Vec<String>,
        /// Leave out the "copy the source" control.
        #[arg(long)]
        no_copy_source: bool,
        /// Labelled AURORA folder to take the items from (default: the embedded test split).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Items per family (task), the first ones of each.
        #[arg(long, default_value_t = 5, value_parser = crate::args::count)]
        per_family: usize,
        /// Shown on the rating page and in the report.
        #[arg(long, default_value = "dynaboot")]
        name: String,
        #[command(flatten)]
        sampling: SamplingArgs,
    },
    /// Add a rater and print their link.
    Rater {
        #[arg(long)]
        study: PathBuf,
        #[arg(long)]
        name: String,
        /// The address the study is (or will be) served on, for the link.
        #[arg(long, default_value = "127.0.0.1:8090", value_parser = crate::args::socket_addr)]
        addr: SocketAddr,
    },
    /// Serve the rating page. On a loopback address (the default) it serves this machine
    /// only; on any other address every link must carry the study's secret key.
    Serve {
        #[arg(long)]
        study: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8090", value_parser = crate::args::socket_addr)]
        addr: SocketAddr,
    },
    /// Add simulated raters who judge every item by the exact judge's score of each candidate
    /// plus noise (studies of the embedded world only): to check the analysis and the setup
    /// before people rate; never a human evaluation (the raters are named `simulated-N`).
    Simulate {
        #[arg(long)]
        study: PathBuf,
        #[arg(long, default_value_t = 3, value_parser = crate::args::count)]
        raters: usize,
        /// Standard deviation of each rater's noise on the 0-10 judge score.
        #[arg(long, default_value_t = 2.0, value_parser = crate::args::score_noise)]
        noise: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Analyse the judgments: json, and with --html a page with the tables and examples.
    Report {
        #[arg(long)]
        study: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        html: Option<PathBuf>,
        /// Judged items shown with their candidates on the HTML page.
        #[arg(long, default_value_t = 6, value_parser = crate::args::count_or_zero)]
        examples: usize,
        /// Replace --out and --html where they exist.
        #[arg(long)]
        force: bool,
    },
}

/// A system as given on the command line.
#[derive(Debug, PartialEq)]
struct SystemSpec {
    name: String,
    world: PathBuf,
    dynamics: Option<PathBuf>,
    n: usize,
}

fn parse_system(text: &str) -> Result<SystemSpec> {
    let hint = "give NAME=WORLD, or NAME=WORLD,dynamics=DYNAMICS,n=N";
    let (name, rest) = text
        .split_once('=')
        .with_context(|| format!("--system {text:?}: {hint}"))?;
    let mut parts = rest.split(',');
    let world = parts.next().filter(|w| !w.is_empty());
    let (name, world) = match (name.trim(), world) {
        (n, Some(w)) if !n.is_empty() => (n.to_string(), PathBuf::from(w)),
        _ => bail!("--system {text:?}: {hint}"),
    };
    let (mut dynamics, mut n) = (None, None);
    for part in parts {
        match part.split_once('=') {
            Some(("dynamics", d)) if !d.is_empty() => dynamics = Some(PathBuf::from(d)),
            Some(("n", v)) => {
                n = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .with_context(|| format!("--system {text:?}: n={v}: give 1 to 1024"))?,
                )
            }
            _ => bail!("--system {text:?}: unknown part {part:?}; {hint}"),
        }
    }
    let n = match (&dynamics, n) {
        (None, Some(n)) if n > 1 => {
            bail!("--system {text:?}: best of {n} needs a verifier: add dynamics=DYNAMICS")
        }
        (None, _) => 1,
        (Some(_), n) => n.unwrap_or(8),
    };
    Ok(SystemSpec {
        name,
        world,
        dynamics,
        n,
    })
}

pub fn run(cmd: StudyCommand) -> Result<()> {
    match cmd {
        StudyCommand::Create {
            out,
            systems,
            no_copy_source,
            data,
            per_family,
            name,
            sampling,
        } => {
            let specs = systems
                .iter()
                .map(|s| parse_system(s))
                .collect::<Result<Vec<_>>>()?;
            create(
                &out,
                &specs,
                !no_copy_source,
                data.as_deref(),
                per_family,
                &name,
                &sampling,
            )
        }
        StudyCommand::Rater { study, name, addr } => {
            let study = Study::open(&study)?;
            let rater = study.add_rater(&name)?;
            let secret = (!addr.ip().is_loopback())
                .then(|| study.secret())
                .transpose()?;
            println!("{}", rater_link(addr, &rater, secret.as_deref()));
            Ok(())
        }
        StudyCommand::Serve { study, addr } => serve_study(&study, addr),
        StudyCommand::Simulate {
            study,
            raters,
            noise,
            seed,
        } => {
            let mut study = Study::open(&study)?;
            let size = match study.items()?.first() {
                Some(item) => {
                    let png = study
                        .image(item.id, dynaboot::study::Image::Source)?
                        .context("the first item has no source image")?;
                    image::load_from_memory(&png)?.width()
                }
                None => bail!("{}: the study has no items", study.path().display()),
            };
            let judge = Judge::new(Recogniser::new(RenderConfig {
                size,
                ..Default::default()
            }));
            let scores = exact_scores(&study, &judge)?;
            simulate_raters(&mut study, &scores, raters, noise, seed)?;
            let info = study.info()?;
            println!(
                "{raters} simulated raters judged {} items: {} judgments in the study now",
                info.items, info.judgments
            );
            Ok(())
        }
        StudyCommand::Report {
            study,
            out,
            html,
            examples,
            force,
        } => {
            crate::args::check_output(&out, force, "--out")?;
            if let Some(h) = &html {
                crate::args::check_output(h, force, "--html")?;
            }
            let study = Study::open_to_read(&study)?;
            let report = analyse(&study)?;
            println!("{}", systems_table(&report).markdown());
            println!("{}", pairs_table(&report).markdown());
            println!(
                "agreement (Krippendorff's alpha, nominal): {}",
                report
                    .agreement
                    .map(|a| format!("{a:.3}"))
                    .unwrap_or("— (needs two raters on an item)".into())
            );
            let json = serde_json::to_string_pretty(&report)?;
            write_atomic(&out, json.as_bytes())?;
            if let Some(html) = html {
                write_atomic(&html, report_html(&study, &report, examples)?.as_bytes())?;
                println!("wrote {}", html.display());
            }
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn create(
    out: &Path,
    specs: &[SystemSpec],
    copy_source: bool,
    data: Option<&Path>,
    per_family: usize,
    name: &str,
    sampling: &SamplingArgs,
) -> Result<()> {
    if out.exists() {
        bail!(
            "{}: exists already; a study is never overwritten (choose another --out)",
            out.display()
        );
    }
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    if copy_source {
        names.push("copy source");
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != names.len() {
        bail!("--system: every system needs its own name, got {names:?}");
    }
    let worlds = specs
        .iter()
        .map(|s| WorldModel::new(load(&s.world)?).map_err(Into::into))
        .collect::<Result<Vec<_>>>()?;
    let verifiers = specs
        .iter()
        .map(|s| {
            s.dynamics
                .as_ref()
                .map(|d| DynamicsModel::new(load(d)?).map_err(anyhow::Error::from))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut contenders: Vec<Contender> = specs
        .iter()
        .zip(worlds.iter().zip(&verifiers))
        .map(|(s, (world, verifier))| Contender::World {
            world,
            verifier: verifier.as_ref(),
            n: s.n,
        })
        .collect();
    let mut systems: Vec<(String, String)> = specs
        .iter()
        .map(|s| {
            let description = match &s.dynamics {
                None => format!("{}, one sample", s.world.display()),
                Some(d) => format!(
                    "{}, best of {} ranked by {}",
                    s.world.display(),
                    s.n,
                    d.display()
                ),
            };
            (s.name.clone(), description)
        })
        .collect();
    if copy_source {
        contenders.push(Contender::CopySource);
        systems.push((
            "copy source".into(),
            "the source image, unchanged (control)".into(),
        ));
    }
    let (items, source): (Vec<EvalItem>, String) = match data {
        Some(dir) => {
            let ds = AuroraDataset::load(dir)?;
            let items = first_per_family(load_items(&ds)?, per_family);
            (items, dir.display().to_string())
        }
        None => {
            let size = worlds[0].model.vq.image_size() as u32;
            (
                test_split_items(per_family, size),
                "the embedded world's test split".into(),
            )
        }
    };
    println!(
        "== {} items x {} systems ({}) into {}",
        items.len(),
        systems.len(),
        names.join(", "),
        out.display()
    );
    let pb = bar(items.len(), "candidates");
    let sampling = sampling.sampling();
    let study = Study::create(
        out,
        name,
        &source,
        &systems,
        study_items(&items, &contenders, &sampling).inspect(|_| pb.inc(1)),
    )?;
    pb.finish_and_clear();
    let info = study.info()?;
    println!(
        "wrote {}: {} items, {} systems; add raters with `dynaboot study rater --study {} --name NAME`",
        out.display(),
        info.items,
        info.systems.len(),
        out.display()
    );
    Ok(())
}

fn serve_study(path: &Path, addr: SocketAddr) -> Result<()> {
    let study = Study::open(path)?;
    let secret = (!addr.ip().is_loopback())
        .then(|| study.secret())
        .transpose()?;
    let raters = study.raters()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the server's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (is another server on that port?)"))?;
        let addr = listener.local_addr()?;
        println!("serving {} on http://{addr} (Ctrl-C stops)", path.display());
        if secret.is_some() {
            println!("reachable beyond this machine: every link carries the study's key");
        }
        if raters.is_empty() {
            println!("no raters yet: add one with `dynaboot study rater --study {} --name NAME --addr {addr}`", path.display());
        }
        for r in &raters {
            println!("  {}: {}", r.name, rater_link(addr, r, secret.as_deref()));
        }
        serve(study, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_parse_with_their_defaults_and_errors_name_the_fix() {
        assert_eq!(
            parse_system("FT=models/world").unwrap(),
            SystemSpec {
                name: "FT".into(),
                world: "models/world".into(),
                dynamics: None,
                n: 1
            }
        );
        let s = parse_system("FT best-of-4=w,dynamics=d,n=4").unwrap();
        assert_eq!((s.name.as_str(), s.n), ("FT best-of-4", 4));
        assert_eq!(s.dynamics, Some("d".into()));
        assert_eq!(parse_system("x=w,dynamics=d").unwrap().n, 8);
        for (bad, want) in [
            ("w", "NAME=WORLD"),
            ("=w", "NAME=WORLD"),
            ("x=", "NAME=WORLD"),
            ("x=w,n=8", "needs a verifier"),
            ("x=w,dynamics=d,n=0", "1 to 1024"),
            ("x=w,verifier=d", "unknown part"),
        ] {
            let e = parse_system(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
