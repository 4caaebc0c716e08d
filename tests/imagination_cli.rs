//! End to end: `dynaboot plan`, `plan eval`, `rollout` and `rollout eval` with the shipped
//! pair: what they write, that the records agree with the embedded world, and that their
//! flags are bounded.

use dynaboot::eval::plan_eval::{PlanEval, execute, problems};
use dynaboot::world::RenderConfig;
use dynaboot::world::render::render_scene;
use dynaboot_tests::{fails, ok, refused, s};
use std::path::{Path, PathBuf};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The start and goal of depth-`depth` problem 0 of `seed`, as PNGs in `dir`.
fn problem_images(dir: &Path, seed: u64, depth: usize) -> (PathBuf, PathBuf) {
    let chain = &problems(seed, depth, 1)[0];
    let render = RenderConfig {
        size: 64,
        ..Default::default()
    };
    let (start, goal) = (dir.join("start.png"), dir.join("goal.png"));
    render_scene(&chain[0].source, render).save(&start).unwrap();
    render_scene(&chain[depth - 1].target, render)
        .save(&goal)
        .unwrap();
    (start, goal)
}

#[test]
fn plan_writes_its_steps_and_the_plan_runs_in_the_true_world() {
    let dir = tempfile::tempdir().unwrap();
    let (start, goal) = problem_images(dir.path(), 12, 1);
    let out = dir.path().join("plan");
    let args = [
        "plan",
        "--start",
        s(&start),
        "--goal",
        s(&goal),
        "--depth",
        "2",
        "--out",
        s(&out),
    ];
    let printed = ok(&args);
    let record = json(&out.join("plan.json"));
    let plan: Vec<String> = serde_json::from_value(record["plan"].clone()).unwrap();
    assert!(!plan.is_empty() && plan.len() <= 2, "{plan:?}");
    assert!(printed.contains(&plan[0]), "{printed}");
    for i in 1..=plan.len() {
        let frame = image::open(out.join(format!("step-{i}.png"))).unwrap();
        assert_eq!((frame.width(), frame.height()), (64, 64));
    }
    assert!(!out.join(format!("step-{}.png", plan.len() + 1)).exists());
    // The tree holds the start and every imagined state; the plan is a path in it.
    let tree = record["tree"].as_array().unwrap();
    assert_eq!(tree[0]["depth"], 0);
    assert_eq!(record["steps"].as_array().unwrap().len(), plan.len());
    // This one-action problem is solved: the plan reaches the goal scene in the world.
    let chain = &problems(12, 1, 1)[0];
    let end = execute(&chain[0].source, &plan).unwrap();
    assert!(end.same_state(&chain[0].target), "{plan:?}");
    // An earlier plan is replaced only when told to.
    let before = std::fs::read(out.join("plan.json")).unwrap();
    let e = fails(&args);
    assert!(e.contains("already exists") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(out.join("plan.json")).unwrap(), before);
    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&forced);
}

#[test]
fn plan_eval_reports_every_depth_beside_its_baselines_and_the_world_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan-eval.json");
    let html = dir.path().join("plan-eval.html");
    let printed = ok(&[
        "plan",
        "eval",
        "--depth",
        "1,2",
        "--n",
        "2",
        "--problem-seed",
        "5",
        "--beam",
        "1",
        "--proposals",
        "2",
        "--candidates",
        "2",
        "--out",
        s(&out),
        "--html",
        s(&html),
    ]);
    assert!(
        printed.contains("| 1 | 2 |") && printed.contains("| 2 | 2 |"),
        "{printed}"
    );
    let record = json(&out);
    let rows = record["per_depth"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, depth) in rows.iter().zip([1, 2]) {
        assert_eq!(row["depth"], depth);
        for key in [
            "success",
            "oracle_success",
            "one_shot_success",
            "random_success",
            "mean_plan_length",
            "seconds_per_plan",
        ] {
            let v = row[key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
            assert!(
                v >= 0.0 && (key.ends_with("length") || key.starts_with("seconds") || v <= 1.0)
            );
        }
        assert!(row["mean_plan_length"].as_f64().unwrap() <= depth as f64);
    }
    // Each recorded success is what executing the recorded plan in the world gives.
    let record = PlanEval::load(&out).unwrap();
    assert_eq!(record.problems.len(), 4);
    for p in &record.problems {
        let chain = &problems(5, p.depth, 2)[p.index];
        let reaches = execute(&chain[0].source, &p.plan)
            .is_ok_and(|end| end.same_state(&chain[p.depth - 1].target));
        assert_eq!(p.success, reaches, "{p:?}");
        assert!(
            p.plan.len() <= p.depth,
            "the depth limit is the problem's depth"
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table") && page.contains("oracle"));
    let e = fails(&["plan", "eval", "--depth", "1", "--n", "1", "--out", s(&out)]);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn rollout_writes_each_imagined_step_a_strip_and_the_read_backs() {
    let dir = tempfile::tempdir().unwrap();
    let (start, _) = problem_images(dir.path(), 3, 2);
    let chain = &problems(3, 2, 1)[0];
    let actions = format!("{}; {}", chain[0].text, chain[1].text);
    let out = dir.path().join("rollout");
    let printed = ok(&[
        "rollout",
        "--image",
        s(&start),
        "--actions",
        &actions,
        "--n",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(printed.contains("read back"), "{printed}");
    let record = json(&out.join("rollout.json"));
    let steps = record["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["action"], chain[1].text.as_str());
    assert!(!steps[0]["read_back"].as_str().unwrap().is_empty());
    let strip = image::open(out.join("strip.png")).unwrap();
    assert_eq!((strip.width(), strip.height()), (3 * 64, 64));
    let e = fails(&[
        "rollout",
        "--image",
        s(&start),
        "--actions",
        " ; ",
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("--actions") && e.contains("';'"), "{e}");
}

#[test]
fn rollout_eval_compares_each_step_with_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rollout-eval.json");
    ok(&[
        "rollout",
        "eval",
        "--steps",
        "2",
        "--chains",
        "2",
        "--n",
        "2",
        "--seed",
        "4",
        "--out",
        s(&out),
    ]);
    let record = json(&out);
    let steps = record["per_step"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    // The first step starts from the true frame either way, with the same samples.
    assert_eq!(steps[0]["judge"], steps[0]["judge_teacher_forced"]);
    assert_eq!(steps[0]["l1"], steps[0]["l1_teacher_forced"]);
    for step in steps {
        let rb = step["read_back"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rb));
        assert!(step["l1"].as_f64().unwrap() < 0.5);
    }
    assert_eq!(record["chains"].as_array().unwrap().len(), 2);
}

#[test]
fn imagination_flags_are_bounded() {
    let img = "missing.png";
    for (flag, value) in [
        ("--depth", "0"),
        ("--depth", "9"),
        ("--beam", "0"),
        ("--beam", "17"),
        ("--proposals", "0"),
        ("--candidates", "9"),
        ("--step-cost", "-1"),
        ("--proposal-weight", "NaN"),
    ] {
        let e = refused(&["plan", "--start", img, "--goal", img, flag, value]);
        assert!(e.contains(value), "{flag} {value}: {e}");
    }
    for (flag, value) in [("--depth", "1,0"), ("--n", "0"), ("--n", "10001")] {
        refused(&["plan", "eval", "--out", "x.json", flag, value]);
    }
    for (flag, value) in [
        ("--steps", "0"),
        ("--steps", "17"),
        ("--chains", "0"),
        ("--n", "0"),
    ] {
        refused(&["rollout", "eval", "--out", "x.json", flag, value]);
    }
    refused(&["rollout", "--image", img, "--actions", "a", "--n", "1025"]);
}
