//! `dynaboot plan` (the actions from a start image to a goal image, found by the two models)
//! and `dynaboot plan eval` (the exact planning benchmark: plans executed in the embedded
//! world, beside the oracle search and two baselines).

use crate::args::PairArgs;
use crate::args::check_output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use dynaboot::eval::plan_eval::{PlanEval, PlanEvalConfig, evaluate_planning};
use dynaboot::eval::report::{Table, html_page};
use dynaboot::files::{load_model_image, save_png, write_atomic};
use dynaboot::imagination::{Imagination, MAX_BEAM, MAX_DEPTH, PlanConfig};
use dynaboot::model::Sampling;
use dynaboot::playground::MAX_CANDIDATES;
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PlanCmd {
    #[command(subcommand)]
    eval: Option<PlanSub>,
    #[command(flatten)]
    plan: PlanArgs,
}

#[derive(Subcommand)]
enum PlanSub {
    /// The exact planning benchmark: problems from a seed, each plan executed in the embedded
    /// world, beside the oracle search (the true simulator imagining), the dynamics model's
    /// one-shot explanation and random valid actions.
    Eval(PlanEvalArgs),
}

/// The search's settings.
#[derive(Args)]
struct SearchArgs {
    /// States the beam keeps per depth (1 to 16).
    #[arg(long, default_value_t = PlanConfig::default().beam, value_parser = beam)]
    beam: usize,
    /// Actions the dynamics model proposes per state (1 to 64).
    #[arg(long, default_value_t = PlanConfig::default().proposals, value_parser = crate::args::proposals)]
    proposals: usize,
    /// Propose only from the whole goal, not from its subgoals (one region of changed
    /// tokens at a time).
    #[arg(long)]
    no_subgoals: bool,
    /// Keep each step's proposed action even where the dynamics model reads the imagined step
    /// as another (by default its reading becomes the step's action).
    #[arg(long)]
    no_relabel: bool,
    /// Best-of-N of the world model imagining each action (1 to 8).
    #[arg(long, default_value_t = PlanConfig::default().n, value_parser = candidates)]
    candidates: usize,
    /// Weight of the dynamics model's mean log p(action | state, goal) in the search's value.
    #[arg(long, default_value_t = PlanConfig::default().proposal_weight, value_parser = crate::args::weight)]
    proposal_weight: f32,
    /// Value taken off per action, in goal tokens.
    #[arg(long, default_value_t = PlanConfig::default().step_cost, value_parser = crate::args::weight)]
    step_cost: f32,
    /// Weight of the verifier's mean log p(action | state, imagined) in the search's value.
    #[arg(long, default_value_t = PlanConfig::default().verify_weight, value_parser = crate::args::weight)]
    verify_weight: f32,
    /// Seed of the world model's samples and the proposals' samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SearchArgs {
    fn config(&self, depth: usize) -> PlanConfig {
        PlanConfig {
            depth,
            beam: self.beam,
            proposals: self.proposals,
            subgoals: !self.no_subgoals,
            relabel: !self.no_relabel,
            n: self.candidates,
            proposal_weight: self.proposal_weight,
            step_cost: self.step_cost,
            verify_weight: self.verify_weight,
            sampling: Sampling {
                seed: self.seed,
                ..Sampling::default()
            },
        }
    }
}

fn bounded(s: &str, max: usize, what: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{s:?}: {what} is a whole number from 1 to {max}")),
    }
}

fn depth(s: &str) -> Result<usize, String> {
    bounded(s, MAX_DEPTH, "the depth")
}

fn beam(s: &str) -> Result<usize, String> {
    bounded(s, MAX_BEAM, "the beam")
}

fn candidates(s: &str) -> Result<usize, String> {
    bounded(s, MAX_CANDIDATES, "best-of-N while planning")
}

fn problems(s: &str) -> Result<usize, String> {
    bounded(
        s,
        dynaboot::eval::plan_eval::MAX_PROBLEMS,
        "the problems per depth",
    )
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    models: PairArgs,
    /// The start image (RGB PNG of the tokenizer's size).
    #[arg(long, required = true)]
    start: Option<PathBuf>,
    /// The goal image.
    #[arg(long, required = true)]
    goal: Option<PathBuf>,
    /// Most actions in a plan (1 to 8).
    #[arg(long, default_value_t = PlanConfig::default().depth, value_parser = depth)]
    depth: usize,
    #[command(flatten)]
    search: SearchArgs,
    /// Folder for plan.json and the imagined frames.
    #[arg(long, default_value = "out/plan")]
    out: PathBuf,
    /// Replace an earlier plan in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct PlanEvalArgs {
    #[command(flatten)]
    models: PairArgs,
    /// Problem depths (true actions between start and goal), comma-separated.
    #[arg(long = "depth", default_value = "1,2,3", value_delimiter = ',', value_parser = depth)]
    depths: Vec<usize>,
    /// Problems per depth.
    #[arg(long, default_value_t = 100, value_parser = problems)]
    n: usize,
    /// Seed of the problems (tune on one seed, report on another).
    #[arg(long, default_value_t = 1)]
    problem_seed: u64,
    /// Most actions in a plan: the problem's depth when not given.
    #[arg(long, value_parser = depth)]
    max_depth: Option<usize>,
    #[command(flatten)]
    search: SearchArgs,
    /// The results (json).
    #[arg(long)]
    out: PathBuf,
    /// A page with the table and the problems.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Replace earlier --out / --html files.
    #[arg(long)]
    force: bool,
}

pub fn run(c: PlanCmd) -> Result<()> {
    match c.eval {
        Some(PlanSub::Eval(a)) => eval(a),
        None => plan(c.plan),
    }
}

fn plan(a: PlanArgs) -> Result<()> {
    let json = a.out.join("plan.json");
    check_output(&json, a.force, "--out")?;
    let (world, dynamics) = a.models.load()?;
    let size = world.model.vq.image_size() as u32;
    let start_path = a.start.as_deref().expect("clap requires --start");
    let goal_path = a.goal.as_deref().expect("clap requires --goal");
    let start = load_model_image(start_path, size).context("--start")?;
    let goal = load_model_image(goal_path, size).context("--goal")?;
    let imagination = Imagination::new(&world, &dynamics)?;
    let cfg = a.search.config(a.depth);
    let clock = std::time::Instant::now();
    let plan = imagination.plan(&start, &goal, &cfg, |_| {})?;
    let seconds = clock.elapsed().as_secs_f64();
    for (i, (step, image)) in plan.steps.iter().zip(&plan.images).enumerate() {
        let file = a.out.join(format!("step-{}.png", i + 1));
        save_png(&file, image)?;
        println!(
            "{}. {}  ({} of {} tokens as the goal's)",
            i + 1,
            step.action,
            step.agreement,
            start.width() / 8 * start.height() / 8
        );
    }
    println!(
        "{} in {seconds:.2} s ({} states imagined)",
        match plan.reached {
            true => "goal reached in imagination",
            false => "goal not reached in imagination; the closest plan found",
        },
        plan.tree.len() - 1
    );
    let record = serde_json::json!({
        "start": start_path, "goal": goal_path, "config": cfg, "seconds": seconds,
        "reached": plan.reached,
        "plan": plan.steps.iter().map(|s| &s.action).collect::<Vec<_>>(),
        "steps": plan.steps, "tree": plan.tree,
    });
    write_atomic(&json, serde_json::to_string_pretty(&record)?.as_bytes())?;
    println!("wrote {}", json.display());
    Ok(())
}

fn eval(a: PlanEvalArgs) -> Result<()> {
    check_output(&a.out, a.force, "--out")?;
    if let Some(h) = &a.html {
        check_output(h, a.force, "--html")?;
    }
    let (world, dynamics) = a.models.load()?;
    let imagination = Imagination::new(&world, &dynamics)?;
    let config = PlanEvalConfig {
        depths: a.depths.clone(),
        problems: a.n,
        seed: a.problem_seed,
        plan: a.search.config(PlanConfig::default().depth),
        depth_limit: a.max_depth,
    };
    let r = evaluate_planning(&imagination, &config, |d, done, of| {
        if done % 10 == 0 || done == of {
            eprintln!("depth {d}: {done}/{of}");
        }
    })?;
    let mut table = Table::new(
        "Planning in the true world",
        &[
            "depth",
            "problems",
            "success",
            "oracle",
            "one-shot",
            "random",
            "plan length",
            "s / plan",
            "imagined goal (judge)",
        ],
    );
    for r in &r.per_depth {
        table.push(vec![
            r.depth.to_string(),
            r.problems.to_string(),
            format!(
                "{:.0} % [{:.0}, {:.0}]",
                100.0 * r.success,
                100.0 * r.success_ci[0],
                100.0 * r.success_ci[1]
            ),
            format!("{:.0} %", 100.0 * r.oracle_success),
            format!("{:.0} %", 100.0 * r.one_shot_success),
            format!("{:.0} %", 100.0 * r.random_success),
            format!("{:.2}", r.mean_plan_length),
            format!("{:.2}", r.seconds_per_plan),
            format!(
                "{:.2} [{:.2}, {:.2}]",
                r.imagined_goal_judge.mean,
                r.imagined_goal_judge.ci_low,
                r.imagined_goal_judge.ci_high
            ),
        ]);
    }
    println!("{}", table.markdown());
    write_atomic(&a.out, serde_json::to_string_pretty(&r)?.as_bytes())?;
    println!("wrote {}", a.out.display());
    if let Some(h) = &a.html {
        let body = table.html() + &problems_html(&r);
        write_atomic(h, html_page("Planning benchmark", &body).as_bytes())?;
        println!("wrote {}", h.display());
    }
    Ok(())
}

fn problems_html(r: &PlanEval) -> String {
    let mut t = Table::new(
        "Problems",
        &[
            "depth",
            "#",
            "truth",
            "plan",
            "ok",
            "oracle plan",
            "oracle ok",
            "one-shot",
        ],
    );
    for p in &r.problems {
        t.push(vec![
            p.depth.to_string(),
            p.index.to_string(),
            p.truth.join("; "),
            p.plan.join("; "),
            p.success.to_string(),
            p.oracle_plan.join("; "),
            p.oracle_success.to_string(),
            p.one_shot.clone(),
        ]);
    }
    t.html()
}
