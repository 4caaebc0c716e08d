//! Training end to end on a tiny model: gradients reach every parameter, world and dynamics
//! overfit a handful of triplets, the dynamics model then ranks the true action first (and the
//! world model the true explanation), and an interrupted run resumes to identical weights.

use super::*;
use crate::model::{
    DynamicsModel, ExplainConfig, Explainer, ModelConfig, ModelMeta, Role, Sampling, Verifier,
    Vocab, WorldLayout, WorldModel,
};
use crate::tokenize::{ImageTokenizer, TextTokenizer, VqConfig};
use crate::world::language::corpus;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn tokenizers() -> (ImageTokenizer, TextTokenizer) {
    tokenizers_on(&Device::Cpu)
}

fn tokenizers_on(device: &Device) -> (ImageTokenizer, TextTokenizer) {
    let vm = VarMap::new();
    let vq = ImageTokenizer::new(
        VqConfig::tiny(32),
        crate::nn::seeded_var_builder(&vm, 1, DType::F32, device),
    )
    .unwrap();
    (vq, TextTokenizer::train(&corpus(1, 3), 300).unwrap())
}

const ACTIONS: [&str; 4] = [
    "push the red cube to the left",
    "put the blue ball into the green bowl",
    "turn the yellow cup upside down",
    "make the purple cone bigger",
];

/// Four examples with random image codes (16 per image, codebook 32).
fn examples(text: &TextTokenizer) -> Vec<Example> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    ACTIONS
        .iter()
        .map(|a| {
            let source: Vec<u32> = (0..16).map(|_| rng.random_range(0..32)).collect();
            let mut target = source.clone();
            for t in target.iter_mut().take(8) {
                *t = rng.random_range(0..32);
            }
            Example {
                recognition_weights: (0..16).map(|i| if i < 8 { 1.8 } else { 0.2 }).collect(),
                source,
                target,
                action: text.encode(a).unwrap(),
                family: "kubric".into(),
                descriptions: Vec::new(),
                change: Vec::new(),
            }
        })
        .collect()
}

fn model_config(roles: Vec<Role>, text: &TextTokenizer, vq: &ImageTokenizer) -> ModelConfig {
    let vocab = Vocab::new(text, vq.config.codebook_size).unwrap();
    ModelConfig {
        backbone: Preset::Tiny.backbone(vocab.size(), 16),
        dynaboot: ModelMeta {
            roles,
            vocab,
            image_tokens: 16,
            vq_path: "vq".into(),
            vq_fingerprint: "0".into(),
            world_layout: WorldLayout::ActionFirst,
        },
    }
}

/// A fresh, untrained tiny model of `roles`, as a checkpoint would load it.
fn untrained(roles: Vec<Role>) -> Arc<crate::model::Model> {
    let (vq, text) = tokenizers();
    let mc = model_config(roles, &text, &vq);
    let tr = Trainer::new(
        Weights::Fresh(&mc),
        config(1),
        examples(&text),
        vec![],
        &Device::Cpu,
    )
    .unwrap();
    Arc::new(tr.snapshot(vq, text).unwrap())
}

fn config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        warmup: 5,
        checkpoint_every: 0,
        eval_every: 0,
        ..Preset::Tiny.train()
    }
}

/// The conditioning test: before training a model reads nothing (true and shuffled inputs
/// score alike); after overfitting rows that share sources and actions (so neither alone
/// tells the answer), the true source and the true pair score far better than shuffled ones.
#[test]
fn the_conditioning_test_sees_a_model_learn_to_read_its_inputs() {
    let (vq, text) = tokenizers();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut rows = Vec::new();
    for _ in 0..3 {
        let source: Vec<u32> = (0..16).map(|_| rng.random_range(0..32)).collect();
        for action in &ACTIONS[..2] {
            let mut target = source.clone();
            for t in target.iter_mut().take(6) {
                *t = rng.random_range(0..32);
            }
            rows.push(Example {
                recognition_weights: vec![1.0; 16],
                source: source.clone(),
                target,
                action: text.encode(action).unwrap(),
                family: "kubric".into(),
                descriptions: Vec::new(),
                change: Vec::new(),
            });
        }
    }
    let mc = model_config(vec![Role::World, Role::Dynamics], &text, &vq);
    let cfg = TrainConfig {
        eval_every: 300,
        ..config(300)
    };
    let mut tr = Trainer::new(Weights::Fresh(&mc), cfg, rows.clone(), rows, &Device::Cpu).unwrap();
    let before = tr.conditioning().unwrap().unwrap();
    let (w, d) = (before.world.unwrap(), before.dynamics.unwrap());
    assert!((w.unchanged_share - 10.0 / 16.0).abs() < 0.05, "{w:?}");
    assert!(
        (w.unchanged_true / w.unchanged_shuffled - 1.0).abs() < 0.1,
        "{w:?}"
    );
    assert!(
        (d.action_true / d.action_shuffled - 1.0).abs() < 0.1,
        "{d:?}"
    );
    let mut logged = Vec::new();
    tr.fit(|_, p| {
        logged.extend(p.conditioning);
        Ok(())
    })
    .unwrap();
    assert_eq!(logged.len(), 1, "evaluated once, at step 300");
    let (w, d) = (logged[0].world.unwrap(), logged[0].dynamics.unwrap());
    assert!(w.unchanged_true < 0.1, "{w:?}");
    assert!(w.unchanged_shuffled > 10.0 * w.unchanged_true, "{w:?}");
    assert!(d.action_shuffled > 3.0 * d.action_true, "{d:?}");
}

#[test]
fn every_parameter_receives_a_gradient() {
    every_parameter_receives_a_gradient_on(&Device::Cpu);
}

fn every_parameter_receives_a_gradient_on(device: &Device) {
    let (vq, text) = tokenizers_on(device);
    let ex = examples(&text);
    let mc = model_config(vec![Role::World, Role::Dynamics], &text, &vq);
    let tr = Trainer::new(Weights::Fresh(&mc), config(1), ex, vec![], device).unwrap();
    let grads = tr.loss_on_first(4).unwrap().backward().unwrap();
    let params = tr.parameters();
    assert!(params.len() > 20);
    for (name, p) in params {
        let g = grads
            .get(&p)
            .unwrap_or_else(|| panic!("{name} gets no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{name} gets a zero gradient");
    }
}

#[test]
fn tiny_world_and_dynamics_models_overfit_and_verify() {
    overfit_and_verify_on(&Device::Cpu);
}

fn overfit_and_verify_on(device: &Device) {
    let (vq, text) = tokenizers_on(device);
    let ex = examples(&text);
    let mc = model_config(vec![Role::World, Role::Dynamics], &text, &vq);
    let mut tr =
        Trainer::new(Weights::Fresh(&mc), config(200), ex.clone(), vec![], device).unwrap();
    let first = tr.step().unwrap().loss;
    let mut last = first;
    while tr.step_count() < 200 {
        last = tr.step().unwrap().loss;
    }
    assert!(first > 3.0 && last < 0.1, "loss {first} -> {last}");
    let model = Arc::new(tr.snapshot(vq, text).unwrap());
    let world = WorldModel::new(model.clone()).unwrap();
    let dynamics = DynamicsModel::new(model.clone()).unwrap();
    for e in &ex {
        let got = world
            .sample_codes(&e.source, &e.action, 1, &Sampling::greedy())
            .unwrap();
        assert_eq!(
            got[0], e.target,
            "the world model reproduces its training target"
        );
        let expl = dynamics
            .explain_codes(&[(e.source.clone(), e.target.clone())], &Sampling::greedy())
            .unwrap();
        assert_eq!(
            expl[0].tokens, e.action,
            "the dynamics model names the action"
        );
        assert!(expl[0].score.sum < 0.0);
    }
    // The true action outscores the others for its own (source, target).
    let e = &ex[0];
    let scores: Vec<f32> = ex
        .iter()
        .map(|other| {
            dynamics
                .score_codes(&e.source, std::slice::from_ref(&e.target), &other.action)
                .unwrap()[0]
                .sum
        })
        .collect();
    assert!(
        scores[1..].iter().all(|s| *s < scores[0] - 1.0),
        "{scores:?}"
    );
    // Best-of-N puts the true target (sampled greedily at every N) first, scores sorted.
    let v = Verifier::new(&world, &dynamics).unwrap();
    let ranked = v
        .rank_codes(
            &e.source,
            &e.action,
            4,
            &Sampling {
                temperature: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ranked.len(), 4);
    assert!(ranked.windows(2).all(|w| w[0].score.sum >= w[1].score.sum));
    let one = v
        .rank_codes(&e.source, &e.action, 1, &Sampling::default())
        .unwrap();
    let plain = world
        .sample_codes(&e.source, &e.action, 1, &Sampling::default())
        .unwrap();
    assert_eq!(one[0].codes, plain[0], "N = 1 is the plain sample");
    // The other way round: the world model checks the dynamics model's proposals, and the true
    // action (the greedy reading of an overfit model) ranks first among distinct proposals.
    let explainer = Explainer::new(&dynamics, &world).unwrap();
    let config = ExplainConfig {
        proposals: 6,
        world_weight: 0.5,
        sampling: Sampling {
            temperature: 3.0,
            ..Default::default()
        },
    };
    let pairs: Vec<_> = ex
        .iter()
        .map(|e| (e.source.clone(), e.target.clone()))
        .collect();
    for (e, ranked) in ex
        .iter()
        .zip(explainer.explain_codes(&pairs, &config).unwrap())
    {
        assert_eq!(ranked[0].checked.tokens, e.action);
        assert!(ranked.len() > 1, "hot samples propose other actions");
        for (i, r) in ranked.iter().enumerate() {
            let c = &r.checked;
            assert!((c.combined - (c.dynamics.sum + 0.5 * c.world.sum)).abs() < 1e-4);
            assert!(ranked[..i].iter().all(|o| o.checked.tokens != c.tokens));
        }
        assert!(
            ranked
                .windows(2)
                .all(|w| w[0].checked.combined >= w[1].checked.combined)
        );
    }
}

/// More candidates than one inference batch run in batches: the samples, scores and
/// explanations are those of a single draw (each sample keeps its random stream), and the
/// batches bound memory whatever N is.
#[test]
fn candidates_beyond_one_batch_are_the_same_draws() {
    use crate::model::backbone::MAX_BATCH;
    let model = untrained(vec![Role::World, Role::Dynamics]);
    let world = WorldModel::new(model.clone()).unwrap();
    let dynamics = DynamicsModel::new(model).unwrap();
    let e = &examples(&tokenizers().1)[0];
    let sampling = Sampling {
        temperature: 1.0,
        seed: 3,
        ..Default::default()
    };
    let few = world
        .sample_codes(&e.source, &e.action, MAX_BATCH + 3, &sampling)
        .unwrap();
    let many = world
        .sample_codes(&e.source, &e.action, 2 * MAX_BATCH + 1, &sampling)
        .unwrap();
    assert_eq!(few.len(), MAX_BATCH + 3);
    assert_eq!(many.len(), 2 * MAX_BATCH + 1);
    assert_eq!(
        few[..],
        many[..few.len()],
        "sample i is the same whatever n is"
    );
    assert!(
        many.iter().skip(1).any(|c| c != &many[0]),
        "temperature 1 draws differ"
    );

    let together = dynamics.score_codes(&e.source, &many, &e.action).unwrap();
    assert_eq!(together.len(), many.len());
    for (c, t) in many.iter().zip(&together) {
        let alone = dynamics
            .score_codes(&e.source, std::slice::from_ref(c), &e.action)
            .unwrap();
        assert!(
            (alone[0].sum - t.sum).abs() < 1e-3,
            "{} vs {}",
            alone[0].sum,
            t.sum
        );
    }

    let pairs: Vec<_> = many.iter().map(|c| (e.source.clone(), c.clone())).collect();
    let some = dynamics
        .explain_codes(&pairs[..MAX_BATCH + 3], &sampling)
        .unwrap();
    let all = dynamics.explain_codes(&pairs, &sampling).unwrap();
    assert_eq!(all.len(), pairs.len());
    for (a, b) in some.iter().zip(&all) {
        assert_eq!(a.tokens, b.tokens);
    }
}

#[test]
fn held_out_rows_are_distinct_and_never_trained_on() {
    let (_, text) = tokenizers();
    let ex = examples(&text);
    let key = |e: &Example| (e.source.clone(), e.target.clone(), e.action.clone());
    // Every row twice, the way `--data a --data a` or a repeated row in data.json gives them.
    let doubled: Vec<Example> = ex.iter().chain(&ex).cloned().collect();
    for (n, want) in [(1, 1), (2, 2), (32, 3)] {
        let (train, eval) = hold_out(doubled.clone(), n, 4);
        assert_eq!(eval.len(), want, "n = {n}");
        let held: std::collections::HashSet<_> = eval.iter().map(key).collect();
        assert_eq!(held.len(), eval.len(), "held-out rows are distinct");
        assert!(train.iter().all(|e| !held.contains(&key(e))), "n = {n}");
        assert_eq!(
            train.len(),
            2 * (ex.len() - want),
            "the other rows all train"
        );
        assert_eq!(rows_also_trained_on(&train, &eval), 0);
        assert_eq!(rows_also_trained_on(&doubled, &eval), want);
    }
    // Without duplicates the split is the plain seeded one: the last n rows after shuffling.
    let (train, eval) = hold_out(ex.clone(), 1, 4);
    assert_eq!((train.len(), eval.len()), (ex.len() - 1, 1));
}

#[test]
fn separate_checkpoints_refuse_the_other_role() {
    let model = untrained(vec![Role::Dynamics]);
    let e = WorldModel::new(model.clone()).err().unwrap().to_string();
    assert!(e.contains("not as a world model"), "{e}");
    assert!(DynamicsModel::new(model).is_ok());
}

#[test]
fn a_nan_loss_stops_with_the_step_named() {
    let (vq, text) = tokenizers();
    let mc = model_config(vec![Role::World], &text, &vq);
    let cfg = TrainConfig {
        lr: f64::NAN,
        ..config(5)
    };
    let mut tr = Trainer::new(
        Weights::Fresh(&mc),
        cfg,
        examples(&text),
        vec![],
        &Device::Cpu,
    )
    .unwrap();
    tr.step().unwrap();
    let e = tr.step().unwrap_err().to_string();
    assert!(
        e.contains("at step 2") && e.contains("learning rate"),
        "{e}"
    );
    assert_eq!(tr.step_count(), 1);
}

#[cfg(feature = "fs")]
#[test]
fn a_resumed_run_ends_with_identical_weights() {
    let (vq, text) = tokenizers();
    let ex = examples(&text);
    let mc = model_config(vec![Role::World, Role::Dynamics], &text, &vq);
    let cfg = TrainConfig {
        batch_size: 3,
        grad_accum: 2,
        weighted: 0.5,
        ..config(7)
    };
    let dir = tempfile::tempdir().unwrap();
    let (held, eval) = hold_out(ex, 1, 0);
    let mut straight = Trainer::new(
        Weights::Fresh(&mc),
        cfg.clone(),
        held.clone(),
        eval.clone(),
        &Device::Cpu,
    )
    .unwrap();
    straight
        .fit_to(&dir.path().join("a"), &text, |_| {})
        .unwrap();

    let b = dir.path().join("b");
    let mut first = Trainer::new(
        Weights::Fresh(&mc),
        TrainConfig {
            steps: 3,
            ..cfg.clone()
        },
        held.clone(),
        eval.clone(),
        &Device::Cpu,
    )
    .unwrap();
    first.fit_to(&b, &text, |_| {}).unwrap();
    // Steps past the checkpoint that a killed run would have taken and lost.
    first.step().unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&b, held, eval, Some(7), &Device::Cpu).unwrap();
    assert_eq!(resumed.step_count(), 3);
    resumed.fit_to(&b, &text, |_| {}).unwrap();
    for ((na, a), (nb, b)) in straight.tensors().iter().zip(resumed.tensors().iter()) {
        assert_eq!(na, nb);
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{na} differs"
        );
    }
    let files = |d: &std::path::Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(
        files(&dir.path().join("a"), "model.safetensors"),
        files(&b, "model.safetensors")
    );
    // The exact-resume state too, byte for byte (its metadata in sorted order).
    assert!(
        files(&dir.path().join("a"), super::run_dir::STATE_FILE)
            == files(&b, super::run_dir::STATE_FILE)
    );
    let lines = std::fs::read_to_string(b.join(super::run_dir::METRICS_FILE)).unwrap();
    let steps: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        (1..=7).collect::<Vec<_>>(),
        "metrics continue without duplicates"
    );
    // A run in parts: stopped after step 3 of the 7-step schedule, then resumed, it ends
    // where the straight run does (the schedule is the whole run's throughout).
    let c = dir.path().join("c");
    let (held, eval) = hold_out(examples(&text), 1, 0);
    let mut part = Trainer::new(
        Weights::Fresh(&mc),
        cfg,
        held.clone(),
        eval.clone(),
        &Device::Cpu,
    )
    .unwrap();
    part.stop_after = Some(3);
    part.fit_to(&c, &text, |_| {}).unwrap();
    assert_eq!(part.step_count(), 3);
    drop(part);
    let mut rest = Trainer::resume(&c, held, eval, None, &Device::Cpu).unwrap();
    assert_eq!((rest.step_count(), rest.config.steps), (3, 7));
    rest.fit_to(&c, &text, |_| {}).unwrap();
    assert_eq!(
        files(&dir.path().join("a"), "model.safetensors"),
        files(&c, "model.safetensors")
    );
    // The checkpoint loads as a model.
    let loaded = crate::model::checkpoint::load_config(&b).unwrap();
    assert_eq!(loaded.dynaboot.roles, vec![Role::World, Role::Dynamics]);
    let _ = VarBuilder::from_buffered_safetensors(
        files(&b, "model.safetensors"),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
}

/// By hand: the whole sequence at once, log-softmax, summed over the completion's tokens.
fn teacher_forced_log_likelihood(model: &crate::model::Model, seq: &crate::model::Sequence) -> f32 {
    let ids = candle_core::Tensor::new(seq.ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model
        .backbone
        .forward(&ids, None, crate::model::Pass::Infer)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let logp = candle_nn::ops::log_softmax(&logits, 1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    seq.completion()
        .map(|p| logp[p - 1][seq.ids[p] as usize])
        .sum()
}

#[test]
fn scores_are_the_log_likelihood_of_the_action_tokens() {
    let (vq, text) = tokenizers();
    let ex = examples(&text);
    let mc = model_config(vec![Role::Dynamics], &text, &vq);
    let tr = Trainer::new(
        Weights::Fresh(&mc),
        config(1),
        ex.clone(),
        vec![],
        &Device::Cpu,
    )
    .unwrap();
    let model = Arc::new(tr.snapshot(vq, text).unwrap());
    let dynamics = DynamicsModel::new(model.clone()).unwrap();
    let e = &ex[0];
    let cands = vec![e.target.clone(), ex[1].target.clone(), e.source.clone()];
    let scores = dynamics.score_codes(&e.source, &cands, &e.action).unwrap();
    // By hand: the action tokens and <eos>.
    for (c, s) in cands.iter().zip(&scores) {
        let seq = model
            .format
            .dynamics_sequence(&e.source, c, &e.action)
            .unwrap();
        let want = teacher_forced_log_likelihood(&model, &seq);
        assert!((want - s.sum).abs() < 1e-3, "{want} vs {}", s.sum);
        assert!((s.mean - s.sum / (e.action.len() + 1) as f32).abs() < 1e-5);
    }
}

/// log p(target | source, action) under the world model is the teacher-forced sum over the
/// target's tokens, whatever the actions' lengths and however many there are (they run in
/// batches of one length, and come back in the order given).
#[test]
fn world_scores_are_the_log_likelihood_of_the_target_tokens() {
    let model = untrained(vec![Role::World]);
    let world = WorldModel::new(model.clone()).unwrap();
    let ex = examples(&model.text);
    let e = &ex[0];
    let actions: Vec<Vec<u32>> = (0..72).map(|i| ex[i % 4].action.clone()).collect();
    let scores = world.score_codes(&e.source, &actions, &e.target).unwrap();
    assert_eq!(
        scores.len(),
        72,
        "18 actions of each length: two batches apiece"
    );
    for (a, s) in actions.iter().zip(&scores) {
        let seq = model
            .format
            .world_sequence(&e.source, a, &e.target, None)
            .unwrap();
        let want = teacher_forced_log_likelihood(&model, &seq);
        assert!((want - s.sum).abs() < 1e-3, "{want} vs {}", s.sum);
        assert!((s.mean - s.sum / 16.0).abs() < 1e-5);
    }
}

/// The `cuda` feature on a real GPU: built and run only with `--features cuda` on a machine
/// with an NVIDIA GPU (`just test-cuda`); CI has none.
#[cfg(feature = "cuda")]
mod cuda {
    use super::*;

    fn gpu() -> Device {
        Device::new_cuda(0).expect("these tests need a CUDA device")
    }

    /// max |a - b| / max |b| over two tensors of the same shape, on the CPU.
    fn relative_error(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_device(&Device::Cpu).unwrap();
        let b = b.flatten_all().unwrap().to_device(&Device::Cpu).unwrap();
        let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        diff / b.iter().map(|y| y.abs()).fold(f32::MIN_POSITIVE, f32::max)
    }

    #[test]
    fn every_parameter_receives_a_gradient_on_cuda() {
        every_parameter_receives_a_gradient_on(&gpu());
    }

    #[test]
    fn tiny_models_overfit_and_verify_on_cuda() {
        overfit_and_verify_on(&gpu());
    }

    #[test]
    fn a_weighted_training_run_on_cuda_follows_the_cpu_run() {
        let run = |device: &Device| {
            let (vq, text) = tokenizers_on(device);
            let mc = model_config(vec![Role::World, Role::Dynamics], &text, &vq);
            let cfg = TrainConfig {
                batch_size: 3,
                grad_accum: 2,
                weighted: 0.5,
                ..config(20)
            };
            let mut tr =
                Trainer::new(Weights::Fresh(&mc), cfg, examples(&text), vec![], device).unwrap();
            let losses: Vec<f64> = (0..20).map(|_| tr.step().unwrap().loss).collect();
            (losses, tr.tensors())
        };
        let (cpu_losses, cpu) = run(&Device::Cpu);
        let (gpu_losses, gpu) = run(&gpu());
        for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
            assert!(
                (c - g).abs() <= 1e-3 * c.abs(),
                "step {step}: loss {c} on the CPU, {g} on CUDA"
            );
        }
        assert!(cpu_losses[19] < cpu_losses[0] * 0.8, "{cpu_losses:?}");
        for ((name, c), (_, g)) in cpu.iter().zip(&gpu) {
            let e = relative_error(g, c);
            assert!(
                e < 1e-3,
                "{name}: CUDA weights differ from the CPU's by {e} after 20 steps"
            );
        }
    }
}

/// The foundation material trains beside a role: overfitting lowers the loss of captions and
/// drawings of the examples' own descriptions, of their transitions and of the descriptions
/// of their changes; data without scenes is refused with the reason.
#[test]
fn foundation_tasks_train_beside_the_role() {
    use super::batch::Batch;
    use super::loss::completion_loss;
    let (vq, text) = tokenizers();
    let mut ex = examples(&text);
    let mc = model_config(vec![Role::Dynamics], &text, &vq);
    let cfg = TrainConfig {
        captions: true,
        drawings: true,
        transitions: true,
        changes: true,
        ..config(200)
    };
    let refusal = |ex: &[Example]| {
        Trainer::new(
            Weights::Fresh(&mc),
            cfg.clone(),
            ex.to_vec(),
            vec![],
            &Device::Cpu,
        )
        .err()
        .expect("refused")
        .to_string()
    };
    let refused = refusal(&ex);
    assert!(refused.contains("no scene descriptions"), "{refused}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for e in &mut ex {
        let scenes: Vec<_> = (0..2)
            .map(|_| crate::world::generate::random_scene(&mut rng, 1..=2))
            .collect();
        e.descriptions = (0..2)
            .map(|k| {
                text.encode(&crate::world::describe_scene(&scenes[k], k))
                    .unwrap()
            })
            .collect();
    }
    let no_change = refusal(&ex);
    assert!(no_change.contains("no change description"), "{no_change}");
    for e in &mut ex {
        let scenes: Vec<_> = (0..2)
            .map(|_| crate::world::generate::random_scene(&mut rng, 1..=1))
            .collect();
        e.change = text
            .encode(&crate::world::describe_change(&scenes[0], &scenes[1], 0))
            .unwrap();
    }
    let format = mc.format();
    let scene_batch = |tr: &Trainer| {
        let mut seqs = Vec::new();
        for e in &ex {
            for (d, image) in e.descriptions.iter().zip([&e.source, &e.target]) {
                seqs.push(format.caption_sequence(image, d).unwrap());
                seqs.push(format.drawing_sequence(d, image).unwrap());
            }
            seqs.push(format.transition_sequence(&e.source, &e.target).unwrap());
            seqs.push(
                format
                    .change_sequence(&e.source, &e.target, &e.change)
                    .unwrap(),
            );
        }
        let batch = Batch::new(&seqs, format.vocab.specials.pad, &Device::Cpu).unwrap();
        completion_loss(&tr.backbone, &batch)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let mut tr = Trainer::new(Weights::Fresh(&mc), cfg, ex.clone(), vec![], &Device::Cpu).unwrap();
    let before = scene_batch(&tr);
    tr.fit(|_, _| Ok(())).unwrap();
    let after = scene_batch(&tr);
    assert!(
        before > 3.0 && after < 1.0,
        "scene loss {before} -> {after}"
    );
    // The role still trains beside them.
    let role_loss = tr.loss_on_first(4).unwrap().to_scalar::<f32>().unwrap();
    assert!(role_loss < 0.5, "dynamics loss {role_loss}");

    // A foundation: no role, only the material; its held-out losses are per task.
    let foundation = model_config(vec![], &text, &vq);
    let nothing = Trainer::new(
        Weights::Fresh(&foundation),
        config(10),
        ex.clone(),
        vec![],
        &Device::Cpu,
    )
    .err()
    .expect("nothing to train")
    .to_string();
    assert!(nothing.contains("foundation material"), "{nothing}");
    let cfg = TrainConfig {
        captions: true,
        drawings: true,
        transitions: true,
        changes: true,
        ..config(10)
    };
    let tr = Trainer::new(
        Weights::Fresh(&foundation),
        cfg,
        ex.clone(),
        ex,
        &Device::Cpu,
    )
    .unwrap();
    let tasks: Vec<&str> = tr
        .eval_loss()
        .unwrap()
        .iter()
        .map(|(t, _)| t.name())
        .collect();
    assert_eq!(tasks, ["captions", "drawings", "transitions", "changes"]);
}

/// A data mixture: an epoch shows each example of a repeated family that many times and every
/// other example once; a family no example has, or a repeat of 0, is refused by name.
#[test]
fn repeats_set_each_familys_share_of_an_epoch() {
    let (vq, text) = tokenizers();
    let mut ex = examples(&text);
    ex[1].family = "whatsup".into();
    let mc = model_config(vec![Role::World], &text, &vq);
    let with = |repeats: &[(&str, usize)]| TrainConfig {
        repeats: repeats.iter().map(|(f, t)| (f.to_string(), *t)).collect(),
        ..config(5)
    };
    let mut tr = Trainer::new(
        Weights::Fresh(&mc),
        with(&[("whatsup", 3)]),
        ex.clone(),
        vec![],
        &Device::Cpu,
    )
    .unwrap();
    let mut seen = [0; 4];
    for k in 0..6 {
        let (i, task, epoch) = tr.item(k);
        assert_eq!((task, epoch), (Task::Role(Role::World), 0));
        seen[i] += 1;
    }
    assert_eq!(seen, [1, 3, 1, 1]);
    assert_eq!(tr.item(6).2, 1, "an epoch is 6 items");

    let refused = |repeats: &[(&str, usize)]| {
        Trainer::new(
            Weights::Fresh(&mc),
            with(repeats),
            ex.clone(),
            vec![],
            &Device::Cpu,
        )
        .err()
        .expect("refused")
        .to_string()
    };
    let e = refused(&[("magicbrush", 2)]);
    assert!(
        e.contains("\"magicbrush\"") && e.contains("kubric, whatsup"),
        "{e}"
    );
    assert!(refused(&[("whatsup", 0)]).contains("at least once"));
}

/// One evaluation ranked by two verifiers gives each verifier's own evaluation: the same
/// candidates drawn and judged once, so N = 1 (no ranking) and the baselines agree, and each
/// report equals evaluating with that verifier alone.
#[cfg(feature = "fs")]
#[test]
fn one_evaluation_ranked_by_two_verifiers_is_each_verifiers_own() {
    use crate::eval::{
        Judge, WorldEvalConfig, evaluate_world, evaluate_world_verified, test_split_items,
    };
    use crate::world::{Recogniser, RenderConfig};
    let (vq, text) = tokenizers();
    let random = |roles: Vec<Role>, seed: u64| {
        let (vq, text) = tokenizers();
        let mc = model_config(roles, &text, &vq);
        let cfg = TrainConfig { seed, ..config(1) };
        let tr = Trainer::new(
            Weights::Fresh(&mc),
            cfg,
            examples(&text),
            vec![],
            &Device::Cpu,
        )
        .unwrap();
        Arc::new(tr.snapshot(vq, text).unwrap())
    };
    drop((vq, text));
    let world = WorldModel::new(random(vec![Role::World], 1)).unwrap();
    let d1 = DynamicsModel::new(random(vec![Role::Dynamics], 2)).unwrap();
    let d2 = DynamicsModel::new(random(vec![Role::Dynamics], 3)).unwrap();
    let items = test_split_items(1, 32);
    let judge = Judge::new(Recogniser::new(RenderConfig {
        size: 32,
        ..Default::default()
    }));
    let cfg = WorldEvalConfig {
        n: 4,
        sampling: Sampling::default(),
        examples_per_family: 1,
    };
    let (both, _) =
        evaluate_world_verified(&world, &[&d1, &d2], &items, &cfg, &judge, |_| {}).unwrap();
    let alone = |d: &DynamicsModel| {
        evaluate_world(&world, Some(d), &items, &cfg, &judge, |_| {})
            .unwrap()
            .0
    };
    assert_eq!(both.len(), 2);
    assert_eq!(both[0], alone(&d1));
    assert_eq!(both[1], alone(&d2));
    // N = 1 is the mean of the same candidates whatever their order (up to the order of the
    // float sums).
    let (a, b) = (&both[0].best_of[0].scores, &both[1].best_of[0].scores);
    assert!((a.average - b.average).abs() < 1e-12 && (a.l1 - b.l1).abs() < 1e-12);
    assert_eq!(both[0].copy_source, both[1].copy_source);
}
