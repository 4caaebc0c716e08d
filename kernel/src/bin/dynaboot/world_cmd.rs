//! `dynaboot world ...`: generate AURORA-format data and look at it.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use dynaboot::data::video::LABELS_FILE;
use dynaboot::data::{AuroraDataset, DATA_FILE, VIDEOS_FILE, VideoDataset, write_triplets};
use dynaboot::files::{save_png, write_atomic};
use dynaboot::world::generate::{self, TEST_PER_FAMILY, Triplet};
use dynaboot::world::{RenderConfig, VideoConfig};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Split {
    /// Labelled triplets for training (families in turn).
    Train,
    /// Unlabelled videos; their actions go to a separate sidecar.
    Videos,
    /// The fixed test split: 50 triplets per family.
    Test,
}

#[derive(Subcommand)]
pub enum WorldCommand {
    /// Write a split as an AURORA-format folder (json, PNGs, sidecars).
    Generate {
        #[arg(long, value_enum)]
        split: Split,
        /// Number of triplets or videos (the test split is fixed: 50 per family).
        #[arg(long, value_parser = crate::args::rows)]
        n: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Image side in pixels (16 to 1024).
        #[arg(long, default_value_t = 64, value_parser = crate::args::image_side)]
        size: u32,
        /// Replace a dataset already in --out (an identical one is kept: nothing to do).
        #[arg(long)]
        force: bool,
    },
    /// Print one row and write its images side by side.
    Show {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 0, value_parser = crate::args::count_or_zero)]
        index: usize,
        /// Where to write the side-by-side PNG (default: out/show-INDEX.png).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: WorldCommand) -> Result<()> {
    match cmd {
        WorldCommand::Generate {
            split,
            n,
            seed,
            out,
            size,
            force,
        } => generate(split, n, seed, &out, size, force),
        WorldCommand::Show {
            data,
            index,
            out,
            force,
        } => show(&data, index, out, force),
    }
}

pub fn generate(
    split: Split,
    n: Option<usize>,
    seed: u64,
    out: &std::path::Path,
    size: u32,
    force: bool,
) -> Result<()> {
    if size < 16 || !size.is_multiple_of(8) {
        bail!("--size {size}: use a multiple of 8, at least 16 (64 is the default, 128 works too)");
    }
    if split == Split::Test && n.is_some_and(|n| n != 4 * TEST_PER_FAMILY) {
        bail!(
            "--n: the test split is fixed at {TEST_PER_FAMILY} examples per family; leave --n out"
        );
    }
    let name = match split {
        Split::Train => "train",
        Split::Videos => "videos",
        Split::Test => "test",
    };
    let manifest = serde_json::json!({ "split": name, "n": n, "seed": seed, "size": size });
    std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    dynaboot::files::lock_output_folder(out)?;
    if already_there(out, &manifest, force)? {
        return Ok(());
    }
    let render = RenderConfig { size, samples: 2 };
    match split {
        Split::Train | Split::Test => {
            let triplets: Vec<Triplet> = if split == Split::Test {
                generate::test_split()
            } else {
                generate::triplets(seed, n.unwrap_or(1000))
            };
            let pb = bar(triplets.len(), "rendering");
            let path = write_triplets(out, &triplets, render, |i| pb.set_position(i as u64))
                .with_context(|| format!("writing {}", out.display()))?;
            pb.finish_and_clear();
            println!("wrote {}", path.display());
        }
        Split::Videos => {
            let n = n.unwrap_or(50);
            let pb = bar(n, "videos");
            // Written as they are made: memory holds one video, whatever --n.
            let videos =
                generate::videos(seed, n, VideoConfig::default(), render).inspect(|_| pb.inc(1));
            VideoDataset::write(out, videos)?;
            pb.finish_and_clear();
            println!(
                "wrote {} videos to {} (labels apart in videos.labels.json)",
                n,
                out.display()
            );
        }
    }
    write_atomic(&out.join(MANIFEST), manifest.to_string().as_bytes())?;
    Ok(())
}

/// What `world generate` wrote into a folder (split, n, seed, size), so that the same command
/// run again has nothing to do.
const MANIFEST: &str = "generated.json";

/// Whether `out` already holds exactly the dataset `manifest` describes; an `out` holding any
/// other dataset is refused unless `force`. Then the old dataset's index files (its rows, its
/// manifest) go first, before any image is written, and the new ones are written last: a
/// rewrite killed half-way (or stopped by a full disk) leaves a folder that every command
/// refuses as holding no dataset, never the old rows beside the new images.
fn already_there(out: &Path, manifest: &serde_json::Value, force: bool) -> Result<bool> {
    let Some(f) = [DATA_FILE, VIDEOS_FILE]
        .into_iter()
        .find(|f| out.join(f).exists())
    else {
        return Ok(false);
    };
    let recorded = std::fs::read_to_string(out.join(MANIFEST))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    if force {
        for index in [MANIFEST, DATA_FILE, VIDEOS_FILE, LABELS_FILE] {
            let path = out.join(index);
            if path.is_file() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        return Ok(false);
    }
    if recorded.as_ref() == Some(manifest) {
        println!(
            "{} already holds this dataset ({manifest}); nothing to do",
            out.display()
        );
        return Ok(true);
    }
    Err(dynaboot::files::earlier_output_refused(out, &out.join(f), "a dataset", None).into())
}

fn show(data: &std::path::Path, index: usize, out: Option<PathBuf>, force: bool) -> Result<()> {
    // The default, out/show-INDEX.png, is this command's own scratch file: replaced freely.
    let replace = force || out.is_none();
    let out = out.unwrap_or_else(|| PathBuf::from(format!("out/show-{index}.png")));
    crate::args::check_output(&out, replace, "--out")?;
    let ds = AuroraDataset::load(data)?;
    let Some(row) = ds.rows.get(index) else {
        bail!(
            "--index {index}: {} has {} rows",
            ds.json.display(),
            ds.rows.len()
        );
    };
    println!(
        "{}",
        dynaboot::data::aurora::rows_to_json(std::slice::from_ref(row))
    );
    let input = ds.input_image(index)?;
    let output = ds.output_image(index)?;
    let (w, h) = input.dimensions();
    let panels = 1 + output.is_some() as u32;
    let mut sheet = image::RgbImage::from_pixel(
        w * panels + 4 * (panels - 1),
        h,
        image::Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut sheet, &input, 0, 0);
    if let Some(o) = &output {
        image::imageops::replace(&mut sheet, o, (w + 4) as i64, 0);
    }
    let scale = (256 / h).max(1);
    let sheet = image::imageops::resize(
        &sheet,
        sheet.width() * scale,
        h * scale,
        image::imageops::FilterType::Nearest,
    );
    save_png(&out, &sheet)?;
    println!("wrote {}", out.display());
    Ok(())
}
