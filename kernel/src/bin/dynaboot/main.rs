//! The `dynaboot` command line: a thin layer over the kernel's public API.

mod ablate_cmd;
mod args;
mod base_cmd;
mod bench_cmd;
mod bench_demo;
mod bootstrap_cmd;
mod demo_cmd;
mod eval_cmd;
mod judge_cmd;
mod plan_cmd;
mod predict_cmd;
mod progress;
mod rollout_cmd;
mod scale_cmd;
mod study_cmd;
mod tokenizer_cmd;
mod train_cmd;
mod world_cmd;

use clap::{Parser, Subcommand};

/// Training allocates and frees large tensors every step; glibc's malloc returns them to the
/// kernel each time (a page fault per touched page), mimalloc keeps them. 3x faster VQ steps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dynaboot",
    version,
    about = "World models and dynamics models with language actions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: best-of-N with the shipped models on the test split, per family.
    Demo(demo_cmd::DemoArgs),
    /// Generate and inspect data from the embedded world.
    #[command(subcommand)]
    World(world_cmd::WorldCommand),
    /// Train and evaluate the image (VQ-VAE) and text (BPE) tokenizers.
    #[command(subcommand)]
    Tokenizer(tokenizer_cmd::TokenizerCommand),
    /// Train a world model, a dynamics model, or both on one set of weights.
    Train(train_cmd::TrainArgs),
    /// Sample next images with a world model, ranked by a dynamics model (best-of-N).
    Predict(predict_cmd::PredictArgs),
    /// Say in words what changed between two images, with a dynamics model.
    Explain(predict_cmd::ExplainArgs),
    /// The actions from a start image to a goal image: the dynamics model proposes, the world
    /// model imagines, a beam search keeps the states closest to the goal (`plan eval`: the
    /// exact benchmark in the embedded world).
    Plan(plan_cmd::PlanCmd),
    /// Apply several actions in imagination, each step verified and read back by the dynamics
    /// model (`rollout eval`: against the true frames of the embedded world).
    Rollout(rollout_cmd::RolloutCmd),
    /// Label unlabelled videos with a dynamics model (weak supervision for the world model).
    Bootstrap(bootstrap_cmd::BootstrapArgs),
    /// Evaluate a world model (best-of-N with a dynamics model) and the dynamics model.
    Eval(eval_cmd::EvalArgs),
    /// Score a world model's predictions with a VLM (OpenAI-compatible endpoint), the paper's
    /// judge for real images; on the embedded test split, compared with the exact judge.
    Judge(judge_cmd::JudgeArgs),
    /// Copy a checkpoint with f16 weights (what ships in models/).
    Export(eval_cmd::ExportArgs),
    /// The paper's human evaluation: create a study, add raters, serve the rating page, report.
    #[command(subcommand)]
    Study(study_cmd::StudyCommand),
    /// The paper's ablation: FT, FDM and FDM without each part, best-of-N, over seeds.
    Ablate(ablate_cmd::AblateArgs),
    /// Where bootstrapping helps: FT and FDM across labelled sizes, the annotator trained on
    /// the same labels (resumable with --resume).
    Scale(scale_cmd::ScaleArgs),
    /// Measure training and inference speed of the `small` preset.
    Bench(bench_cmd::BenchArgs),
    /// Logits of a token sequence at every position (to compare with other implementations).
    Logits(base_cmd::LogitsArgs),
    /// Fold a LoRA adapter into its base and save the merged model.
    Merge(base_cmd::MergeArgs),
}

/// The device named by a `--device` argument: `cpu`, `cuda` or `cuda:N`.
pub fn device(name: &str) -> anyhow::Result<candle_core::Device> {
    Ok(dynaboot::device::parse_device(name, "--device")?)
}

pub use dynaboot::device::base_dtype;

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never hand freed memory back to the kernel: training frees and reallocates the same
    // large buffers every step, and each return costs a page fault per page when it comes
    // back (135k faults in a 25 s benchmark before, 1.7k after).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo_cmd::run(a),
        Command::World(c) => world_cmd::run(c),
        Command::Tokenizer(c) => tokenizer_cmd::run(c),
        Command::Train(a) => train_cmd::run(a),
        Command::Predict(a) => predict_cmd::predict(a),
        Command::Explain(a) => predict_cmd::explain(a),
        Command::Plan(c) => plan_cmd::run(c),
        Command::Rollout(c) => rollout_cmd::run(c),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Bootstrap(a) => bootstrap_cmd::run(a),
        Command::Ablate(a) => ablate_cmd::run(a),
        Command::Scale(a) => scale_cmd::run(a),
        Command::Study(c) => study_cmd::run(c),
        Command::Judge(a) => judge_cmd::run(a),
        Command::Eval(a) => eval_cmd::run(a),
        Command::Export(a) => eval_cmd::export(a),
        Command::Logits(a) => base_cmd::logits(a),
        Command::Merge(a) => base_cmd::merge(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    use std::any::TypeId;

    /// Every numeric flag of every subcommand: the words that reach its subcommand, the flag,
    /// and its value's type.
    fn numeric_flags() -> Vec<(Vec<String>, String, &'static str)> {
        let numeric: [(TypeId, &str); 10] = [
            (TypeId::of::<u8>(), "u8"),
            (TypeId::of::<u16>(), "u16"),
            (TypeId::of::<u32>(), "u32"),
            (TypeId::of::<u64>(), "u64"),
            (TypeId::of::<usize>(), "usize"),
            (TypeId::of::<i32>(), "i32"),
            (TypeId::of::<i64>(), "i64"),
            (TypeId::of::<f32>(), "f32"),
            (TypeId::of::<f64>(), "f64"),
            (TypeId::of::<Vec<usize>>(), "list"),
        ];
        fn walk(
            cmd: &clap::Command,
            path: Vec<String>,
            numeric: &[(TypeId, &'static str)],
            out: &mut Vec<(Vec<String>, String, &'static str)>,
        ) {
            for arg in cmd.get_arguments() {
                let id = arg.get_value_parser().type_id();
                let (Some((_, kind)), Some(long)) =
                    (numeric.iter().find(|(t, _)| id == *t), arg.get_long())
                else {
                    continue;
                };
                out.push((path.clone(), format!("--{long}"), kind));
            }
            for sub in cmd.get_subcommands() {
                let mut path = path.clone();
                path.push(sub.get_name().to_string());
                walk(sub, path, numeric, out);
            }
        }
        let mut out = Vec::new();
        walk(&Cli::command(), vec!["dynaboot".into()], &numeric, &mut out);
        out
    }

    #[test]
    fn every_numeric_flag_refuses_what_no_run_can_use_and_names_its_range() {
        let flags = numeric_flags();
        assert!(
            flags.len() > 100,
            "only {} numeric flags found",
            flags.len()
        );
        let mut unbounded = Vec::new();
        for (path, flag, kind) in &flags {
            // A seed may be any number of its type; every other number is a size, a rate or
            // a weight, which no run can use at the type's maximum.
            let huge: &[&str] = match flag.ends_with("seed") {
                true => &[],
                false => &["1e300", "18446744073709551615", "99999999999"],
            };
            for value in ["NaN", "inf", "-1"].iter().chain(huge) {
                let mut words = path.clone();
                words.push(format!("{flag}={value}"));
                // A refused value fails as a value error; any other outcome (even a missing
                // required flag, checked after the values) means the value was taken.
                let refused = Cli::command().try_get_matches_from(&words).is_err_and(|e| {
                    matches!(
                        e.kind(),
                        ErrorKind::ValueValidation | ErrorKind::InvalidValue
                    )
                });
                if !refused {
                    unbounded.push(format!("{} {flag} ({kind}) takes {value}", path.join(" ")));
                }
            }
        }
        assert!(
            unbounded.is_empty(),
            "{} unbounded:\n{}",
            unbounded.len(),
            unbounded.join("\n")
        );
    }
}
