//! `dynaboot bench --demo`: the browser demo's numbers measured natively, for comparison with
//! the page's. The shipped models on the demo's first scene (seed 1), its first suggested
//! action, best-of-8 at temperature 1 with seed 0: time to the first candidate and to all 8,
//! with candle on the CPU and with the WebGPU kernels on the machine's wgpu adapter (lavapipe
//! where there is no GPU).

use anyhow::{Context, Result};
use candle_core::Device;
use dynaboot::model::Prediction;
use dynaboot::model::{Model, Sampling};
use dynaboot::playground::{MAX_CANDIDATES, Playground};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Milliseconds to the first candidate and to all of them, median of `repeats` runs.
fn median_times(
    repeats: usize,
    mut run: impl FnMut(&mut dyn FnMut(&Prediction)) -> dynaboot::Result<Vec<Prediction>>,
) -> Result<(f64, f64, Vec<usize>)> {
    let mut firsts = Vec::new();
    let mut alls = Vec::new();
    let mut order = Vec::new();
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let mut first = None;
        let got = run(&mut |_| {
            first.get_or_insert_with(|| start.elapsed().as_secs_f64() * 1e3);
        })?;
        alls.push(start.elapsed().as_secs_f64() * 1e3);
        firsts.push(first.context("no candidate came back")?);
        order = got.iter().map(|c| c.sample).collect();
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(firsts), median(alls), order))
}

pub fn run(models: &Path, repeats: usize, json: bool) -> Result<()> {
    let load = |name: &str| -> Result<Arc<Model>> {
        Ok(Arc::new(Model::load(&models.join(name), &Device::Cpu)?))
    };
    let (world, dynamics) = (load("world")?, load("dynamics")?);
    let playground = Playground::new(world.clone(), dynamics.clone(), 1)?;
    let action = playground.suggestions(1)[0].clone();
    let sampling = Sampling::default();
    let n = MAX_CANDIDATES;
    let (first, all, order) = median_times(repeats, |on| {
        playground.predict(&action, n, &sampling, |c| on(c))
    })?;
    let mut report = serde_json::json!({
        "action": action,
        "n": n,
        "threads": candle_core::utils::get_num_threads(),
        "cpu": {"first_candidate_ms": first, "all_ms": all, "samples_best_first": order},
    });
    let gpu = dynaboot::gpu::block_on(dynaboot::gpu::Gpu::new())?;
    if let Some(gpu) = gpu {
        let adapter = gpu.describe();
        let weights = |name: &str| -> Result<Vec<u8>> {
            let path = models.join(name).join("model.safetensors");
            std::fs::read(&path).with_context(|| path.display().to_string())
        };
        let verifier = dynaboot::gpu::GpuVerifier::new(
            std::rc::Rc::new(gpu),
            (&world, &weights("world")?),
            (&dynamics, &weights("dynamics")?),
            &weights("vq")?,
        )?;
        let (first, all, order) = median_times(repeats, |on| {
            dynaboot::gpu::block_on(
                playground.predict_gpu(&verifier, &action, n, &sampling, |c| on(c)),
            )
        })?;
        report["gpu"] = serde_json::json!({
            "adapter": adapter,
            "first_candidate_ms": first,
            "all_ms": all,
            "samples_best_first": order,
        });
    }
    if json {
        println!("{report}");
        return Ok(());
    }
    println!("best-of-{n} with the shipped models, \"{action}\" on scene 1, seed 0");
    for key in ["cpu", "gpu"] {
        if let Some(r) = report.get(key) {
            let name = r["adapter"]
                .as_str()
                .map_or("candle on the CPU".to_string(), |a| format!("wgpu on {a}"));
            println!(
                "  {:<40} first candidate {:>7.0} ms   all {n} {:>7.0} ms   samples {}",
                name,
                r["first_candidate_ms"].as_f64().unwrap_or(f64::NAN),
                r["all_ms"].as_f64().unwrap_or(f64::NAN),
                r["samples_best_first"]
            );
        }
    }
    if report.get("gpu").is_none() {
        println!(
            "  (no wgpu adapter: install a Vulkan driver, e.g. mesa-vulkan-drivers, for the GPU row)"
        );
    }
    Ok(())
}
