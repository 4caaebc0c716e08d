//! A training run described once and opened once. A [`RunSpec`] says what the run's weights
//! start from ([`Start`]: fresh, a base, LoRA adapters on a base, a resumed run), which
//! examples it trains on ([`Data`]) and is evaluated on ([`HeldOut`]), its recipe (a
//! [`Preset`] with [`Overrides`]) and where it is saved; [`RunSpec::open`] checks it all and
//! gives a ready [`Trainer`]. The CLI's `train`, the ablation and the notebooks set up their
//! runs through it; what a run then does is [`Trainer::fit`] or [`Trainer::fit_to`].

use super::config::{Overrides, Preset};
use super::data::{Example, load_examples};
use super::run_dir::{METRICS_FILE, STATE_FILE};
use super::trainer::{Trainer, Weights, check_mixture, hold_out, rows_also_trained_on};
use crate::data::AuroraDataset;
use crate::device::base_dtype;
use crate::error::{Error, Result};
use crate::model::base::BaseModel;
use crate::model::lora::LoraConfig;
use crate::model::{ModelConfig, Role};
use crate::tokenize::{ImageCodec, ImageTokenizer, TextTokenizer};
use candle_core::Device;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a run's weights start from.
#[derive(Clone, Debug)]
pub enum Start {
    /// Fresh parameters of the preset's size over the spec's tokenizers, drawn from the seed.
    Fresh,
    /// Fresh parameters of this configuration (its own vocabulary and size).
    Config(ModelConfig),
    /// A base checkpoint (a dynaboot checkpoint folder or an HF Chameleon/Anole folder),
    /// fine-tuned in full on its own tokenizers.
    Base {
        /// The base's folder.
        dir: PathBuf,
        /// The taming VQGAN that decodes an HF base's images (`None` for a dynaboot base).
        vqgan: Option<PathBuf>,
    },
    /// The base frozen, with fresh LoRA adapters: only they train.
    Lora {
        /// The base's folder, as for [`Start::Base`].
        dir: PathBuf,
        /// The taming VQGAN of an HF base, as for [`Start::Base`].
        vqgan: Option<PathBuf>,
        /// The adapters' rank, scale, dropout and target projections.
        lora: LoraConfig,
    },
    /// The run saved in the spec's `out`, continued where it stopped.
    Resume,
}

/// What a run trains on.
#[derive(Clone, Debug)]
pub enum Data {
    /// AURORA-format folders (or json files) of labelled triplets, concatenated in order, and
    /// triplets a dynamics model labelled after them; tokenised with the run's tokenizers.
    Folders {
        /// The labelled folders.
        labelled: Vec<PathBuf>,
        /// A folder of dynamics-labelled pairs (`dynaboot bootstrap`'s output), if any.
        synthetic: Option<PathBuf>,
    },
    /// Examples already tokenised with the run's tokenizers.
    Examples(Vec<Example>),
}

/// What a run is evaluated on (held-out loss and the conditioning test).
#[derive(Clone, Debug)]
pub enum HeldOut {
    /// Nothing.
    Nothing,
    /// This many rows of the data, chosen by the run's seed ([`hold_out`]).
    FromData(usize),
    /// An AURORA-format folder.
    Folder(PathBuf),
}

/// One training run, described in full.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The roles trained; none for a foundation (its tasks are set in `overrides`).
    pub roles: Vec<Role>,
    /// Where the weights start.
    pub start: Start,
    /// What it trains on.
    pub data: Data,
    /// What it is evaluated on.
    pub eval: HeldOut,
    /// The size of a fresh model and the recipe `overrides` change.
    pub preset: Preset,
    /// Changes to the preset's recipe (a resumed run takes only `steps` from them).
    pub overrides: Overrides,
    /// The folder with `vq/` and `tokenizer.json` that a fresh or resumed run uses (a base
    /// brings its own); `None`: the shipped ones ([`crate::shipped::shipped_models`]).
    pub tokenizers: Option<PathBuf>,
    /// The folder the run is saved in (`None`: a run in memory, saved by nobody).
    pub out: Option<PathBuf>,
    /// Replace a run already saved in `out` (without it a fresh run refuses to).
    pub replace: bool,
}

/// A run ready to train, with what opening it found.
pub struct OpenedRun {
    /// The run, at step 0 (or where a resumed run stopped).
    pub trainer: Trainer,
    /// The text tokenizer the run's examples were tokenised with (saved beside its weights).
    pub text: TextTokenizer,
    /// Training examples from the labelled data.
    pub labelled: usize,
    /// Training examples from the synthetic data.
    pub synthetic: usize,
    /// Held-out rows that are also training rows (their held-out loss measures memory).
    pub held_out_also_trained: usize,
}

impl RunSpec {
    /// A run of `roles` from `start` on `data`, with the demo preset's recipe, nothing held
    /// out, the shipped tokenizers, kept in memory.
    pub fn new(roles: Vec<Role>, start: Start, data: Data) -> RunSpec {
        RunSpec {
            roles,
            start,
            data,
            eval: HeldOut::Nothing,
            preset: Preset::Demo,
            overrides: Overrides::default(),
            tokenizers: None,
            out: None,
            replace: false,
        }
    }

    /// Checks the run and opens it: the folder it is saved in (a resumed run must be there, a
    /// fresh one must not replace another unless `replace`), the data mixture against the
    /// data's families, the base and the tokenizers, the examples against the roles and the
    /// recipe. Nothing is written before the checks that need no tokenisation have passed.
    pub fn open(self, device: &Device) -> Result<OpenedRun> {
        let resume = matches!(self.start, Start::Resume);
        match (&self.out, resume) {
            (None, true) => {
                return Err(Error::Invalid(
                    "a resumed run needs the folder it was saved in".into(),
                ));
            }
            (Some(out), true) if !out.join(STATE_FILE).exists() => {
                return Err(Error::Invalid(format!(
                    "--resume: {} has no {STATE_FILE}; start without --resume",
                    out.display()
                )));
            }
            _ => {}
        }
        if let Some(repeats) = self.overrides.repeats.as_ref().filter(|r| !r.is_empty()) {
            check_mixture(repeats.keys(), &self.families()?)?;
        }
        match (&self.out, resume) {
            (Some(out), false) => clear_earlier_run(out, self.replace)?,
            (Some(out), true) => crate::files::lock_output_folder(out)?,
            (None, _) => {}
        }
        let base = match &self.start {
            Start::Base { dir, vqgan } | Start::Lora { dir, vqgan, .. } => Some(
                BaseModel::open(dir, vqgan.as_deref(), base_dtype(device), device)
                    .map_err(|e| Error::Invalid(format!("--base {}: {e}", dir.display())))?,
            ),
            _ => None,
        };
        let tokenizers = match (&base, &self.tokenizers) {
            (Some(_), _) => None,
            (None, Some(dir)) => Some(dir.clone()),
            (None, None) => Some(crate::shipped::shipped_models()?),
        };
        let own = match &tokenizers {
            Some(dir) => Some(load_tokenizers(dir, device)?),
            None => None,
        };
        let (vq, fingerprint, text) = match (&base, &own) {
            (Some(b), _) => (&b.vq, b.meta.vq_fingerprint.clone(), b.text.clone()),
            (None, Some((vq, fingerprint, text))) => (vq, fingerprint.clone(), text.clone()),
            (None, None) => unreachable!("the tokenizers are loaded where there is no base"),
        };

        let (mut examples, synthetic) = match self.data {
            Data::Folders {
                labelled,
                synthetic,
            } => {
                let mut examples = Vec::new();
                for dir in &labelled {
                    examples.extend(load_examples(dir, vq, &fingerprint, &text)?);
                }
                let extra = match &synthetic {
                    Some(s) => load_examples(s, vq, &fingerprint, &text)?,
                    None => Vec::new(),
                };
                (examples, extra)
            }
            Data::Examples(examples) => (examples, Vec::new()),
        };
        let (labelled, n_synthetic) = (examples.len(), synthetic.len());
        examples.extend(synthetic);
        let seed = self.overrides.seed.unwrap_or(0);
        let (train, eval, held_out_also_trained) = match &self.eval {
            HeldOut::Nothing => (examples, Vec::new(), 0),
            HeldOut::FromData(n) => {
                let (train, eval) = hold_out(examples, *n, seed);
                (train, eval, 0)
            }
            HeldOut::Folder(dir) => {
                let eval = load_examples(dir, vq, &fingerprint, &text)?;
                let both = rows_also_trained_on(&examples, &eval);
                (examples, eval, both)
            }
        };
        if let Some(out) = &self.out {
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            // Half-written files of a run killed during a checkpoint write.
            crate::files::remove_stale_temps(out)?;
        }

        let trainer = match (&self.start, &self.out) {
            (Start::Resume, Some(out)) => {
                let t = Trainer::resume(out, train, eval, self.overrides.steps, device)?;
                if t.model_config.dynaboot.roles != self.roles {
                    return Err(Error::Invalid(format!(
                        "--resume: the checkpoint in {} trains {:?}, not {:?}",
                        out.display(),
                        t.model_config.dynaboot.roles,
                        self.roles
                    )));
                }
                t
            }
            (start, out) => {
                let config = self.preset.train().with(&self.overrides);
                let fresh = match (start, &tokenizers) {
                    (Start::Config(c), _) => Some(c.clone()),
                    (Start::Fresh, Some(dir)) => {
                        let vq_dir = dir.join("vq");
                        let vq_path = match out {
                            Some(out) => crate::files::relative_path(out, &vq_dir)?,
                            None => vq_dir,
                        };
                        Some(self.preset.model_config(
                            self.roles.clone(),
                            &text,
                            vq,
                            vq_path.to_string_lossy().into_owned(),
                            fingerprint.clone(),
                        )?)
                    }
                    _ => None,
                };
                let weights = match (start, &base, &fresh) {
                    (_, _, Some(c)) => Weights::Fresh(c),
                    (Start::Lora { lora, .. }, Some(b), None) => {
                        Weights::Lora(b, self.roles.clone(), lora.clone())
                    }
                    (Start::Base { .. }, Some(b), None) => Weights::Base(b, self.roles.clone()),
                    _ => {
                        return Err(Error::Invalid(
                            "a run starts from fresh weights, a base or a resumed run".into(),
                        ));
                    }
                };
                Trainer::new(weights, config, train, eval, device)?
            }
        };
        Ok(OpenedRun {
            trainer,
            text,
            labelled,
            synthetic: n_synthetic,
            held_out_also_trained,
        })
    }

    /// The families of the training data, read from the rows (before anything is tokenised).
    fn families(&self) -> Result<BTreeSet<String>> {
        Ok(match &self.data {
            Data::Folders {
                labelled,
                synthetic,
            } => {
                let mut families = BTreeSet::new();
                for dir in labelled.iter().chain(synthetic) {
                    let ds = AuroraDataset::load(dir)
                        .map_err(|e| Error::Invalid(format!("--data {}: {e}", dir.display())))?;
                    families.extend(ds.rows.into_iter().map(|r| r.family));
                }
                families
            }
            Data::Examples(examples) => examples.iter().map(|e| e.family.clone()).collect(),
        })
    }
}

/// The image tokenizer, its fingerprint and the text tokenizer of the folder `dir`.
fn load_tokenizers(dir: &Path, device: &Device) -> Result<(ImageCodec, String, TextTokenizer)> {
    let hint = |e: Error| {
        Error::Invalid(format!(
            "--tokenizers {}: give the folder `dynaboot tokenizer train --out` wrote (vq/ \
             and tokenizer.json; the shipped ones are models/ of the repository): {e}",
            dir.display()
        ))
    };
    let vq_dir = dir.join("vq");
    Ok((
        ImageCodec::from(ImageTokenizer::load(&vq_dir, device).map_err(hint)?),
        crate::model::checkpoint::vq_fingerprint(&vq_dir).map_err(hint)?,
        TextTokenizer::load(&dir.join("tokenizer.json")).map_err(hint)?,
    ))
}

/// A fresh run into a folder that holds an earlier run would replace its weights and its log:
/// refused unless `replace`, and then the earlier run's files go first, so that a run stopped
/// early never leaves the old weights beside the new log.
fn clear_earlier_run(out: &Path, replace: bool) -> Result<()> {
    const RUN_FILES: [&str; 6] = [
        "model.safetensors",
        "adapter_model.safetensors",
        STATE_FILE,
        METRICS_FILE,
        "config.json",
        "adapter_config.json",
    ];
    let earlier: Vec<PathBuf> = RUN_FILES
        .iter()
        .map(|f| out.join(f))
        .filter(|p| p.exists())
        .collect();
    let instead = Some("--resume to continue it");
    crate::files::clear_earlier_output(out, &earlier, "a run", instead, replace)
}
