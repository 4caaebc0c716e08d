//! The exact planning benchmark. Problems come from a seed: a random scene, `k` random valid
//! actions that never return to an earlier state ([`random_chain`]), the goal the true scene
//! after them; the planner sees only the rendered start and goal images. Each plan is then
//! **executed in the embedded world** — every action parsed by the world's parser and applied
//! to the true start scene — and succeeds when every action applies and the final scene is the
//! goal scene. In the same run, three baselines on the same problems: random valid actions of
//! the right length, the dynamics model's one-shot explanation of start -> goal (one action),
//! and the same search with the true simulator imagining in place of the world model (the
//! oracle: what the search would do with a perfect world model).

use crate::error::{Error, Result};
use crate::eval::Judge;
use crate::imagination::plan::{Imagined, Search, Step, search};
use crate::imagination::{Imagination, PlanConfig};
use crate::model::backbone::ready;
use crate::model::dynamics_model::read_back;
use crate::stats::Estimate;
use crate::world::generate::{random_chain, rng};
use crate::world::render::render_scene;
use crate::world::{Action, Family, Recogniser, RenderConfig, Scene, parse};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Most problems per depth.
pub const MAX_PROBLEMS: usize = 10_000;

/// What the benchmark runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEvalConfig {
    /// Problem depths: the number of true actions between start and goal.
    pub depths: Vec<usize>,
    /// Problems per depth.
    pub problems: usize,
    /// Seed of the problems (and of the random baseline).
    pub seed: u64,
    /// The search, for the world model and the oracle alike.
    pub plan: PlanConfig,
    /// Most actions in a plan; `None`: the problem's depth (the search then knows how many
    /// actions the goal is away, though not which).
    pub depth_limit: Option<usize>,
}

impl PlanEvalConfig {
    fn check(&self) -> Result<()> {
        self.plan.check()?;
        if self.depths.is_empty() {
            return Err(Error::Invalid("give at least one depth".into()));
        }
        if let Some(d) = self
            .depths
            .iter()
            .find(|&&d| d == 0 || d > crate::imagination::MAX_DEPTH)
        {
            return Err(Error::Invalid(format!(
                "problem depth {d}: use 1 to {}",
                crate::imagination::MAX_DEPTH
            )));
        }
        if let Some(limit) = self.depth_limit {
            PlanConfig {
                depth: limit,
                ..self.plan.clone()
            }
            .check()?;
        }
        if !(1..=MAX_PROBLEMS).contains(&self.problems) {
            return Err(Error::Invalid(format!(
                "{} problems per depth: use 1 to {MAX_PROBLEMS}",
                self.problems
            )));
        }
        Ok(())
    }
}

/// One planning problem and what each planner made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProblemResult {
    /// True actions between start and goal.
    pub depth: usize,
    /// The problem's number within its depth.
    pub index: usize,
    /// The true actions, in words.
    pub truth: Vec<String>,
    /// The plan with the world model imagining.
    pub plan: Vec<String>,
    /// Whether it reaches the goal in the true world.
    pub success: bool,
    /// Why not, when it does not (an action the world refuses or does not parse, or the scene
    /// it ends in differs from the goal).
    pub failure: Option<String>,
    /// Whether the search judged the goal reached (all tokens equal the goal's).
    pub reached: bool,
    /// The judge's score of the plan's last imagined frame against the true goal (0-10).
    pub imagined_goal_judge: f64,
    /// Seconds the search took.
    pub seconds: f64,
    /// The oracle's plan (the true simulator imagining).
    pub oracle_plan: Vec<String>,
    /// Whether it reaches the goal.
    pub oracle_success: bool,
    /// The dynamics model's one-shot explanation of start -> goal.
    pub one_shot: String,
    /// Whether that one action reaches the goal.
    pub one_shot_success: bool,
    /// Whether random valid actions of the right length reach the goal.
    pub random_success: bool,
}

/// The results of one depth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthResult {
    /// True actions between start and goal.
    pub depth: usize,
    /// Problems planned.
    pub problems: usize,
    /// Share of plans that reach the goal in the true world, with Wilson's interval.
    pub success: f64,
    /// Its interval.
    pub success_ci: [f64; 2],
    /// The oracle search's success.
    pub oracle_success: f64,
    /// Its interval.
    pub oracle_success_ci: [f64; 2],
    /// The one-shot explanation's success.
    pub one_shot_success: f64,
    /// Random valid actions' success.
    pub random_success: f64,
    /// Share of searches that judged the goal reached.
    pub reached: f64,
    /// Mean actions per plan.
    pub mean_plan_length: f64,
    /// Mean actions per oracle plan.
    pub oracle_mean_plan_length: f64,
    /// Mean seconds per plan (the world model's search).
    pub seconds_per_plan: f64,
    /// The judge of the last imagined frame against the true goal.
    pub imagined_goal_judge: Estimate,
}

/// The benchmark's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEval {
    /// What ran.
    pub config: PlanEvalConfig,
    /// One row per depth.
    pub per_depth: Vec<DepthResult>,
    /// Every problem.
    pub problems: Vec<ProblemResult>,
}

impl PlanEval {
    /// The record `dynaboot plan eval` wrote.
    pub fn load(path: &std::path::Path) -> Result<PlanEval> {
        let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a planning record ({e}); make one with `dynaboot plan eval`",
                path.display()
            ))
        })
    }
}

/// The problems of one depth: a pure function of the seed and the depth.
pub fn problems(seed: u64, depth: usize, n: usize) -> Vec<Vec<crate::world::Triplet>> {
    let mut r = rng(seed ^ (depth as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..n).map(|_| random_chain(&mut r, depth)).collect()
}

/// Runs `plan` in the true world from `start`: the scene it ends in, or why it cannot run.
pub fn execute(start: &Scene, plan: &[String]) -> std::result::Result<Scene, String> {
    let mut scene = start.clone();
    for (i, text) in plan.iter().enumerate() {
        let action =
            parse(text).map_err(|e| format!("step {}: {text:?} does not parse: {e}", i + 1))?;
        scene = action
            .apply(&scene)
            .map_err(|e| format!("step {}: {text:?} cannot happen: {e}", i + 1))?;
    }
    Ok(scene)
}

/// Random valid actions, `steps` of them, from `start` (families drawn uniformly).
fn random_walk(r: &mut impl Rng, start: &Scene, steps: usize) -> Scene {
    let mut scene = start.clone();
    for _ in 0..steps {
        let family = *Family::ALL.choose(r).expect("families");
        if let Some(a) = Action::valid_in(&scene, family).choose(r) {
            scene = a.apply(&scene).expect("valid_in returns valid actions");
        }
    }
    scene
}

/// Plans every problem of every depth with the world model and with the oracle, and runs the
/// baselines; `progress(depth, done, of)` after each problem.
pub fn evaluate_planning(
    imagination: &Imagination,
    config: &PlanEvalConfig,
    mut progress: impl FnMut(usize, usize, usize),
) -> Result<PlanEval> {
    config.check()?;
    let w = &imagination.world.model;
    let d = &imagination.dynamics.model;
    let render = RenderConfig {
        size: w.vq.image_size() as u32,
        ..Default::default()
    };
    let judge = Judge::new(Recogniser::new(render));
    let mut walk = rng(config.seed.wrapping_add(0x5eed));
    let mut results = Vec::new();
    let mut per_depth = Vec::new();
    for &depth in &config.depths {
        let plan_config = PlanConfig {
            depth: config.depth_limit.unwrap_or(depth),
            ..config.plan.clone()
        };
        let problems = problems(config.seed, depth, config.problems);
        let mut rows = Vec::with_capacity(problems.len());
        for (index, chain) in problems.iter().enumerate() {
            let start = &chain[0].source;
            let goal = &chain[chain.len() - 1].target;
            let images = [render_scene(start, render), render_scene(goal, render)];
            let mut codes = w.encode_images(&images)?;
            let goal_codes = codes.pop().expect("two images");
            let start_codes = codes.pop().expect("two images");

            let clock = Instant::now();
            let found = imagination.plan_codes(&start_codes, &goal_codes, &plan_config, |_| {})?;
            let seconds = clock.elapsed().as_secs_f64();
            let plan = texts(&found);
            let executed = execute(start, &plan);
            let success = executed.as_ref().is_ok_and(|s| s.same_state(goal));
            let failure = match &executed {
                Err(e) => Some(e.clone()),
                Ok(_) if !success => Some("the plan ends in another scene than the goal".into()),
                Ok(_) => None,
            };
            let last = found.path.last().map(|&i| found.nodes[i].codes.clone());
            let imagined_goal_judge = match last {
                Some(c) => judge.judge(start, goal, &w.decode_images(&[c])?[0]).score,
                None => 0.0,
            };

            let oracle = oracle_search(
                imagination,
                render,
                start,
                &start_codes,
                &goal_codes,
                &plan_config,
            )?;
            let oracle_plan = texts(&oracle);
            let oracle_success = execute(start, &oracle_plan).is_ok_and(|s| s.same_state(goal));

            let dynamics = (&d.backbone, &d.format);
            let (tokens, _) = ready(read_back(dynamics, &start_codes, &goal_codes))?;
            let one_shot = d.text.decode(&tokens)?;
            let one_shot_success =
                execute(start, std::slice::from_ref(&one_shot)).is_ok_and(|s| s.same_state(goal));
            let random_success = random_walk(&mut walk, start, depth).same_state(goal);

            rows.push(ProblemResult {
                depth,
                index,
                truth: chain.iter().map(|t| t.text.clone()).collect(),
                plan,
                success,
                failure,
                reached: found.reached,
                imagined_goal_judge,
                seconds,
                oracle_plan,
                oracle_success,
                one_shot,
                one_shot_success,
                random_success,
            });
            progress(depth, index + 1, problems.len());
        }
        per_depth.push(summarise(depth, &rows));
        results.extend(rows);
    }
    Ok(PlanEval {
        config: config.clone(),
        per_depth,
        problems: results,
    })
}

/// The plan's actions in words.
fn texts(found: &Search) -> Vec<String> {
    found
        .path
        .iter()
        .map(|&i| found.nodes[i].action.clone())
        .collect()
}

/// The same search with the true simulator imagining: each proposed action parsed and applied
/// to the true scene, rendered and tokenised; an action the world refuses cannot be imagined.
fn oracle_search(
    imagination: &Imagination,
    render: RenderConfig,
    start: &Scene,
    start_codes: &[u32],
    goal_codes: &[u32],
    cfg: &PlanConfig,
) -> Result<Search> {
    let w = &imagination.world.model;
    let d = &imagination.dynamics.model;
    let imagine = async |scene: &Scene, _: &[u32], action: &[u32]| -> Result<Imagined<Scene>> {
        let Ok(parsed) = parse(&d.text.decode(action)?) else {
            return Ok(None);
        };
        let Ok(next) = parsed.apply(scene) else {
            return Ok(None);
        };
        let codes = w.encode_images(&[render_scene(&next, render)])?.remove(0);
        Ok(Some(Step {
            state: next,
            codes,
            verification: None,
            read_back: None,
        }))
    };
    ready(search(
        (&d.backbone, &d.format),
        &d.text,
        (start.clone(), start_codes.to_vec()),
        goal_codes,
        cfg,
        imagine,
        |_| {},
    ))
}

/// One depth's row from its problems.
fn summarise(depth: usize, rows: &[ProblemResult]) -> DepthResult {
    let n = rows.len();
    let share = |f: fn(&ProblemResult) -> bool| {
        Estimate::proportion(rows.iter().filter(|r| f(r)).count(), n)
    };
    let mean = |f: fn(&ProblemResult) -> f64| rows.iter().map(f).sum::<f64>() / n as f64;
    let success = share(|r| r.success);
    let oracle = share(|r| r.oracle_success);
    DepthResult {
        depth,
        problems: n,
        success: success.mean,
        success_ci: [success.ci_low, success.ci_high],
        oracle_success: oracle.mean,
        oracle_success_ci: [oracle.ci_low, oracle.ci_high],
        one_shot_success: share(|r| r.one_shot_success).mean,
        random_success: share(|r| r.random_success).mean,
        reached: share(|r| r.reached).mean,
        mean_plan_length: mean(|r| r.plan.len() as f64),
        oracle_mean_plan_length: mean(|r| r.oracle_plan.len() as f64),
        seconds_per_plan: mean(|r| r.seconds),
        imagined_goal_judge: Estimate::of(
            &rows
                .iter()
                .map(|r| r.imagined_goal_judge)
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DynamicsModel, Model, WorldModel};
    use candle_core::Device;
    use std::sync::Arc;

    #[test]
    fn a_plan_runs_in_the_true_world_or_says_which_step_fails() {
        let chain = &problems(4, 2, 1)[0];
        let (start, goal) = (&chain[0].source, &chain[1].target);
        let truth: Vec<String> = chain.iter().map(|t| t.text.clone()).collect();
        assert!(execute(start, &truth).unwrap().same_state(goal));
        assert!(!execute(start, &truth[..1]).unwrap().same_state(goal));
        let e = execute(start, &[truth[0].clone(), "dance a little".into()]).unwrap_err();
        assert!(
            e.starts_with("step 2:") && e.contains("does not parse"),
            "{e}"
        );
        // The first action again: the scene has already changed, so it may be refused or
        // lead elsewhere, never to the goal.
        let again = execute(start, &[truth[0].clone(), truth[0].clone()]);
        assert!(again.is_err() || !again.unwrap().same_state(goal));
        assert_eq!(problems(4, 2, 3), problems(4, 2, 3));
        assert_ne!(problems(4, 2, 3), problems(5, 2, 3));
    }

    #[test]
    fn the_oracle_search_plans_a_one_action_problem_the_world_accepts() {
        let dir = crate::shipped::shipped_models().unwrap();
        let load = |name: &str| Arc::new(Model::load(&dir.join(name), &Device::Cpu).unwrap());
        let (world, dynamics) = (
            WorldModel::new(load("world")).unwrap(),
            DynamicsModel::new(load("dynamics")).unwrap(),
        );
        let im = Imagination::new(&world, &dynamics).unwrap();
        let config = PlanEvalConfig {
            depths: vec![1],
            problems: 3,
            seed: 12,
            plan: PlanConfig::default(),
            depth_limit: None,
        };
        let mut seen = Vec::new();
        let r = evaluate_planning(&im, &config, |d, done, of| seen.push((d, done, of))).unwrap();
        assert_eq!(seen, vec![(1, 1, 3), (1, 2, 3), (1, 3, 3)]);
        assert_eq!(r.problems.len(), 3);
        for p in &r.problems {
            // What the record says is what executing its plan in the world gives.
            let chain = &problems(12, 1, 3)[p.index];
            assert_eq!(p.truth, vec![chain[0].text.clone()]);
            let ends = |plan: &[String]| {
                execute(&chain[0].source, plan).is_ok_and(|s| s.same_state(&chain[0].target))
            };
            assert_eq!(p.success, ends(&p.plan));
            assert_eq!(p.oracle_success, ends(&p.oracle_plan));
            assert!(p.plan.len() <= 1 && p.oracle_plan.len() <= 1);
            assert_eq!(p.success, p.failure.is_none());
            // With the true simulator the search reaches the goal exactly when its plan does.
            assert!(p.oracle_success, "{p:?}");
        }
        let row = &r.per_depth[0];
        assert_eq!(row.oracle_success, 1.0);
        assert!(row.success_ci[0] <= row.success && row.success <= row.success_ci[1]);
    }
}
