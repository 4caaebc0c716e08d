//! Planning towards a goal image with the two models: Video Language Planning (Du et al. 2023)
//! with the paper's pair. A beam search whose only knowledge is the models and the images: at
//! each depth the dynamics model proposes `K` distinct actions from (state, goal) — its greedy
//! readings of the goal and of *subgoals* (the goal pasted on the state over one region of
//! changed tokens at a time), then samples — the world model imagines each (best-of-N, verified), and a heuristic
//! computed from the images and the models keeps the best `B` states:
//!
//! value = tokens of the state that equal the goal's  +  λ · mean log p(action | parent, goal)
//!         +  μ · mean log p(action | parent, imagined)  −  step cost · depth
//!
//! The image tokenizer is local (each token a function of its own 8x8 patch), so the share of
//! tokens that equal the goal's counts the parts of the scene that already look like the goal.
//! The search stops when a state's tokens all equal the goal's (the goal is judged reached) or
//! at the depth limit; the plan is the path to the best state.
//!
//! What imagines a step is a closure, so the same search runs with the world model
//! ([`super::Imagination::plan`]) and, for evaluation only, with the true simulator in its place
//! (the oracle of `eval::plan_eval`): whatever separates the two is the world model's error.

use crate::error::{Error, Result};
use crate::model::backbone::Backbone;
use crate::model::dynamics_model::{explain_pairs, read_back};
use crate::model::explainer::MAX_PROPOSALS;
use crate::model::verifier::best_of_n;
use crate::model::{Format, Role, Sampling, Score};
use crate::playground::MAX_CANDIDATES;
use crate::tokenize::text::TextTokenizer;
use serde::{Deserialize, Serialize};

/// Most actions a plan may have.
pub const MAX_DEPTH: usize = 8;
/// Most states the beam keeps per depth.
pub const MAX_BEAM: usize = 16;

/// How the search runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanConfig {
    /// Most actions in a plan (the depth limit).
    pub depth: usize,
    /// `B`: states kept per depth.
    pub beam: usize,
    /// `K`: most actions the dynamics model proposes per state: its greedy readings of the
    /// goal (and of the subgoals), then samples at temperature 1 towards the goal; repeats
    /// are dropped.
    pub proposals: usize,
    /// Whether the dynamics model also reads the subgoals: the goal pasted on the state over
    /// one connected region of changed tokens at a time, and over two.
    pub subgoals: bool,
    /// Whether each imagined step is read back by the dynamics model and, where its reading
    /// differs from the action proposed, takes the reading as its action (hindsight
    /// relabelling: the world model may draw a valid change for an action that cannot happen,
    /// e.g. naming a colour the scene does not have yet; the reading names what it drew).
    pub relabel: bool,
    /// Best-of-N of the world model imagining each proposed action.
    pub n: usize,
    /// λ: weight of the dynamics model's mean log p(action | state, goal) in the value.
    pub proposal_weight: f32,
    /// Value taken off per action, in goal tokens: a longer plan must match more of the goal.
    pub step_cost: f32,
    /// μ: weight of the verifier's mean log p(action | parent, imagined) in the value. An
    /// action that cannot happen in the scene is still imagined, but the dynamics model does
    /// not read it in the picture the world model drew.
    pub verify_weight: f32,
    /// How the world model samples; proposals at depth `d` draw from seeds after this one.
    pub sampling: Sampling,
}

impl Default for PlanConfig {
    /// Chosen on the tuning problems (seed 7, 20 per depth; `models/README.md`): 8 proposals
    /// with subgoals and relabelling; 16 proposals raise success further at twice the time.
    fn default() -> Self {
        PlanConfig {
            depth: 3,
            beam: 2,
            proposals: 8,
            subgoals: true,
            relabel: true,
            n: 4,
            proposal_weight: 0.0,
            step_cost: 0.5,
            verify_weight: 0.0,
            sampling: Sampling::default(),
        }
    }
}

impl PlanConfig {
    /// Refuses settings outside their ranges, naming the field.
    pub fn check(&self) -> Result<()> {
        let bounded = |name: &str, v: usize, max: usize| match (1..=max).contains(&v) {
            true => Ok(()),
            false => Err(Error::Invalid(format!(
                "plan {name} {v}: use a whole number from 1 to {max}"
            ))),
        };
        bounded("depth", self.depth, MAX_DEPTH)?;
        bounded("beam", self.beam, MAX_BEAM)?;
        bounded("proposals", self.proposals, MAX_PROPOSALS)?;
        bounded("n", self.n, MAX_CANDIDATES)?;
        for (name, v) in [
            ("proposal weight", self.proposal_weight),
            ("step cost", self.step_cost),
            ("verify weight", self.verify_weight),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Invalid(format!(
                    "plan {name} {v}: use a number of at least 0"
                )));
            }
        }
        Ok(())
    }
}

/// One state the search reached: the start, or an action imagined from its parent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanNode {
    /// The node this action was taken from (`None` for the start).
    pub parent: Option<usize>,
    /// Actions from the start.
    pub depth: usize,
    /// The action in words (empty for the start): the one proposed, or the dynamics model's
    /// reading of what the world model imagined when they differ and `relabel` is on.
    pub action: String,
    /// The action the dynamics model proposed.
    pub proposed: String,
    /// Whether `action` is the reading of the imagined step rather than the proposal.
    pub relabelled: bool,
    /// The action's text token ids.
    #[serde(skip)]
    pub(crate) tokens: Vec<u32>,
    /// The state's image codes.
    #[serde(skip)]
    pub codes: Vec<u32>,
    /// log p(action | parent, goal) under the dynamics model, as proposed.
    pub proposal: Option<Score>,
    /// log p(action | parent, imagined) under the dynamics model: the imagination's verifier
    /// score (`None` where the simulator imagined).
    pub verification: Option<Score>,
    /// How many of the state's image tokens equal the goal's.
    pub agreement: usize,
    /// The heuristic's value (see the module's doc).
    pub value: f32,
    /// Whether the beam kept it to expand.
    pub kept: bool,
}

/// The searched tree and the plan chosen in it.
#[derive(Clone, Debug)]
pub(crate) struct Search {
    /// Every node, the start first, children after their parents.
    pub(crate) nodes: Vec<PlanNode>,
    /// The nodes of the plan, start excluded, in order.
    pub(crate) path: Vec<usize>,
    /// Whether the last node's tokens all equal the goal's.
    pub(crate) reached: bool,
}

impl Search {
    /// The codes of the plan's imagined frames, in order.
    pub(crate) fn path_codes(&self) -> Vec<Vec<u32>> {
        self.path
            .iter()
            .map(|&i| self.nodes[i].codes.clone())
            .collect()
    }
}

/// What imagining an action gives; `None` when the action cannot be imagined (the simulator
/// refuses it).
pub(crate) type Imagined<S> = Option<Step<S>>;

/// An imagined step.
pub(crate) struct Step<S> {
    /// What the imagination carries along (the oracle's true scene).
    pub(crate) state: S,
    /// The imagined image's codes.
    pub(crate) codes: Vec<u32>,
    /// The verifier's log p(action | parent, imagined), where a model imagined.
    pub(crate) verification: Option<Score>,
    /// The dynamics model's reading of parent -> imagined, where it was asked
    /// ([`PlanConfig::relabel`]): the step's action when it differs from the one proposed.
    pub(crate) read_back: Option<Vec<u32>>,
}

/// The beam search from `start` towards `goal` (image codes): the dynamics model proposes,
/// `imagine(state, codes, action)` imagines, `on_node` sees each imagined state as it comes.
pub(crate) async fn search<D: Backbone, S: Clone>(
    dynamics: (&D, &Format),
    text: &TextTokenizer,
    start: (S, Vec<u32>),
    goal: &[u32],
    cfg: &PlanConfig,
    mut imagine: impl AsyncFnMut(&S, &[u32], &[u32]) -> Result<Imagined<S>>,
    mut on_node: impl FnMut(&PlanNode),
) -> Result<Search> {
    cfg.check()?;
    let agreement = |codes: &[u32]| codes.iter().zip(goal).filter(|(a, b)| a == b).count();
    let (state, codes) = start;
    let mut nodes = vec![PlanNode {
        parent: None,
        depth: 0,
        action: String::new(),
        proposed: String::new(),
        relabelled: false,
        tokens: Vec::new(),
        agreement: agreement(&codes),
        codes,
        proposal: None,
        verification: None,
        value: f32::NEG_INFINITY,
        kept: true,
    }];
    let mut states = vec![state];
    let mut frontier = vec![0usize];
    let mut reached = false;
    for depth in 1..=cfg.depth {
        let proposed = propose(dynamics, &nodes, &frontier, goal, cfg, depth).await?;
        let first_child = nodes.len();
        for (&parent, actions) in frontier.iter().zip(proposed) {
            for (tokens, proposal) in actions {
                let Some(step) = imagine(&states[parent], &nodes[parent].codes, &tokens).await?
                else {
                    continue;
                };
                let Step {
                    state,
                    codes,
                    verification,
                    read_back,
                } = step;
                // A state seen before is never better reached later.
                if nodes.iter().any(|n| n.codes == codes) {
                    continue;
                }
                let agreement = agreement(&codes);
                let verified = verification.map_or(0.0, |v| v.mean);
                let value = agreement as f32
                    + cfg.proposal_weight * proposal.mean
                    + cfg.verify_weight * verified
                    - cfg.step_cost * depth as f32;
                let proposed = text.decode(&tokens)?;
                let (tokens, relabelled) = match read_back {
                    Some(read) if !read.is_empty() && read != tokens => (read, true),
                    _ => (tokens, false),
                };
                nodes.push(PlanNode {
                    parent: Some(parent),
                    depth,
                    action: text.decode(&tokens)?,
                    proposed,
                    relabelled,
                    tokens,
                    codes,
                    proposal: Some(proposal),
                    verification,
                    agreement,
                    value,
                    kept: false,
                });
                on_node(&nodes[nodes.len() - 1]);
                states.push(state);
            }
        }
        let mut children: Vec<usize> = (first_child..nodes.len()).collect();
        children.sort_by(|&a, &b| nodes[b].value.total_cmp(&nodes[a].value).then(a.cmp(&b)));
        children.truncate(cfg.beam);
        for &c in &children {
            nodes[c].kept = true;
        }
        frontier = children;
        reached = nodes[first_child..]
            .iter()
            .any(|n| n.agreement == goal.len());
        if reached || frontier.is_empty() {
            break;
        }
    }
    let best = (1..nodes.len())
        .filter(|&i| !reached || nodes[i].agreement == goal.len())
        .max_by(|&a, &b| {
            nodes[a]
                .value
                .total_cmp(&nodes[b].value)
                .then(nodes[b].depth.cmp(&nodes[a].depth))
                .then(b.cmp(&a))
        });
    let mut path = Vec::new();
    let mut at = best;
    while let Some(i) = at.filter(|&i| i != 0) {
        path.push(i);
        at = nodes[i].parent;
    }
    path.reverse();
    Ok(Search {
        reached: path
            .last()
            .is_some_and(|&i| nodes[i].agreement == goal.len()),
        nodes,
        path,
    })
}

/// The search with the world model imagining each proposal: a best-of-`cfg.n` from the
/// parent's codes, verified by the dynamics model and, with [`PlanConfig::relabel`], read back
/// by it. On any backbones, so candle and the GPU plan with the same code.
pub(crate) async fn imagine_and_search<W: Backbone, D: Backbone>(
    world: (&W, &Format),
    dynamics: (&D, &Format),
    text: &TextTokenizer,
    (start, goal): (&[u32], &[u32]),
    cfg: &PlanConfig,
    on_node: impl FnMut(&PlanNode),
) -> Result<Search> {
    let imagine = async |_: &(), codes: &[u32], action: &[u32]| -> Result<Imagined<()>> {
        // A proposal too long for the world model's prompt cannot be imagined.
        if world.1.check_action(action, Role::World).is_err() {
            return Ok(None);
        }
        let best = best_of_n(world, dynamics, codes, action, cfg.n, &cfg.sampling)
            .await?
            .swap_remove(0);
        let read_back = match cfg.relabel {
            true => Some(read_back(dynamics, codes, &best.codes).await?.0),
            false => None,
        };
        Ok(Some(Step {
            state: (),
            codes: best.codes,
            verification: Some(best.score),
            read_back,
        }))
    };
    search(
        dynamics,
        text,
        ((), start.to_vec()),
        goal,
        cfg,
        imagine,
        on_node,
    )
    .await
}

/// Most subgoals read per state (the goal itself, one per region, one per pair of regions).
const MAX_SUBGOALS: usize = 16;

/// The goal as seen from `state`, and the *subgoals*: the goal's tokens pasted onto the
/// state's only over one connected region of differing tokens (8-neighbours on the token
/// grid), and over two. The dynamics model learnt single changes; a goal several actions
/// away shows several, and each region is closer to one. Only images are read: the tokenizer
/// is local, so a region of changed tokens is a region of changed pixels.
pub(crate) fn subgoals(state: &[u32], goal: &[u32]) -> Vec<Vec<u32>> {
    let side = (state.len() as f64).sqrt() as usize;
    let differs: Vec<bool> = state.iter().zip(goal).map(|(a, b)| a != b).collect();
    let mut region = vec![usize::MAX; state.len()];
    let mut regions: Vec<Vec<usize>> = Vec::new();
    for seed in 0..state.len() {
        if !differs[seed] || region[seed] != usize::MAX {
            continue;
        }
        let id = regions.len();
        let mut cells = vec![seed];
        region[seed] = id;
        let mut k = 0;
        while k < cells.len() {
            let (r, c) = ((cells[k] / side) as isize, (cells[k] % side) as isize);
            for (dr, dc) in (-1..=1).flat_map(|dr| (-1..=1).map(move |dc| (dr, dc))) {
                let (nr, nc) = (r + dr, c + dc);
                if nr < 0 || nc < 0 || nr >= side as isize || nc >= side as isize {
                    continue;
                }
                let j = nr as usize * side + nc as usize;
                if differs[j] && region[j] == usize::MAX {
                    region[j] = id;
                    cells.push(j);
                }
            }
            k += 1;
        }
        regions.push(cells);
    }
    let paste = |cells: &[&Vec<usize>]| {
        let mut sub = state.to_vec();
        for &j in cells.iter().copied().flatten() {
            sub[j] = goal[j];
        }
        sub
    };
    let mut out = vec![goal.to_vec()];
    if regions.len() > 1 {
        out.extend(regions.iter().map(|r| paste(&[r])));
    }
    if regions.len() > 2 {
        for a in 0..regions.len() {
            for b in a + 1..regions.len() {
                out.push(paste(&[&regions[a], &regions[b]]));
            }
        }
    }
    out.truncate(MAX_SUBGOALS);
    out
}

/// The distinct, non-empty actions the dynamics model proposes for each frontier node towards
/// `goal`, with their scores: its greedy reading first, then samples.
async fn propose<D: Backbone>(
    (backbone, format): (&D, &Format),
    nodes: &[PlanNode],
    frontier: &[usize],
    goal: &[u32],
    cfg: &PlanConfig,
    depth: usize,
) -> Result<Vec<Vec<(Vec<u32>, Score)>>> {
    let mut proposed: Vec<Vec<(Vec<u32>, Score)>> = vec![Vec::new(); frontier.len()];
    let add = |p: &mut Vec<(Vec<u32>, Score)>, (tokens, score): (Vec<u32>, Score)| {
        if !tokens.is_empty() && p.len() < cfg.proposals && !p.iter().any(|(t, _)| *t == tokens) {
            p.push((tokens, score));
        }
    };
    // The greedy reading of each (sub)goal, all states' in one batch.
    let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut owner = Vec::new();
    for (f, &i) in frontier.iter().enumerate() {
        let state = &nodes[i].codes;
        let targets = match cfg.subgoals {
            true => subgoals(state, goal),
            false => vec![goal.to_vec()],
        };
        for target in targets {
            pairs.push((state.clone(), target));
            owner.push(f);
        }
    }
    let read = explain_pairs(backbone, format, &pairs, &Sampling::greedy()).await?;
    for (f, explained) in owner.into_iter().zip(read) {
        add(&mut proposed[f], explained);
    }
    // Samples towards the whole goal fill what is left.
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = frontier
        .iter()
        .map(|&i| (nodes[i].codes.clone(), goal.to_vec()))
        .collect();
    for s in 1..cfg.proposals {
        if proposed.iter().all(|p| p.len() >= cfg.proposals) {
            break;
        }
        let sampling = Sampling {
            seed: cfg
                .sampling
                .seed
                .wrapping_add((depth * MAX_PROPOSALS + s) as u64),
            ..Sampling::default()
        };
        let explained = explain_pairs(backbone, format, &pairs, &sampling).await?;
        for (p, e) in proposed.iter_mut().zip(explained) {
            add(p, e);
        }
    }
    Ok(proposed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subgoals_paste_the_goal_one_region_at_a_time() {
        // A 4x4 grid: two separate regions differ (top-left cell, bottom-right 2x1).
        let state = vec![0u32; 16];
        let mut goal = state.clone();
        goal[0] = 1;
        goal[14] = 2;
        goal[15] = 3;
        let subs = subgoals(&state, &goal);
        assert_eq!(subs.len(), 3, "the goal and one per region");
        assert_eq!(subs[0], goal);
        let mut first = state.clone();
        first[0] = 1;
        let mut second = state.clone();
        second[14] = 2;
        second[15] = 3;
        assert_eq!(subs[1..], [first, second]);
        // Diagonal neighbours are one region; three regions add their pairs.
        let mut goal = state.clone();
        goal[0] = 1;
        goal[5] = 1;
        assert_eq!(subgoals(&state, &goal).len(), 1);
        let mut goal = state.clone();
        goal[0] = 1;
        goal[3] = 1;
        goal[15] = 1;
        assert_eq!(subgoals(&state, &goal).len(), 1 + 3 + 3);
        assert_eq!(subgoals(&state, &state), vec![state.clone()]);
    }
}
