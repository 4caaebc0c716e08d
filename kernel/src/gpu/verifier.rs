//! Best-of-N on the GPU: the world model samples N candidates, the dynamics model scores them
//! and the decoder draws them, each a wgpu model ([`GpuChameleon`], [`GpuVqDecoder`]). The
//! sampling ([`ImageSampler`]), the scoring plan ([`ScoringPlan`]) and the ranking are the
//! CPU models' own, so both backends choose alike.

use super::{Gpu, GpuChameleon, GpuVqDecoder, Positions};
use crate::error::{Error, Result};
use crate::model::dynamics::ScoringPlan;
use crate::model::verifier::{check_compatible, rank};
use crate::model::world::ImageSampler;
use crate::model::{Model, Role, Sampling, Score};
use crate::tokenize::ImageCodec;
use image::RgbImage;
use std::rc::Rc;

pub struct GpuVerifier {
    world: GpuChameleon,
    dynamics: GpuChameleon,
    decoder: GpuVqDecoder,
}

impl GpuVerifier {
    /// Uploads a world and a dynamics model (their `model.safetensors` bytes) and their shared
    /// image tokenizer's decoder (its `model.safetensors` bytes) for the models `world` and
    /// `dynamics` describe.
    pub fn new(
        gpu: Rc<Gpu>,
        (world, world_weights): (&Model, &[u8]),
        (dynamics, dynamics_weights): (&Model, &[u8]),
        vq_weights: &[u8],
    ) -> Result<Self> {
        check_compatible(world, dynamics)?;
        for (m, role) in [(world, Role::World), (dynamics, Role::Dynamics)] {
            if !m.config.has_role(role) {
                return Err(Error::Invalid(format!(
                    "this checkpoint was trained as {:?}, not as the {} model",
                    m.config.dynaboot.roles,
                    role.name()
                )));
            }
        }
        let ImageCodec::Embedded(vq) = &world.vq else {
            return Err(Error::Invalid(
                "the WebGPU path decodes with the embedded image tokenizer only; Chameleon's \
                 VQGAN runs on candle"
                    .into(),
            ));
        };
        let backbone = |m: &Model, bytes| {
            GpuChameleon::from_safetensors(gpu.clone(), m.config.backbone.clone(), bytes)
        };
        Ok(GpuVerifier {
            world: backbone(world, world_weights)?,
            dynamics: backbone(dynamics, dynamics_weights)?,
            decoder: GpuVqDecoder::from_safetensors(gpu.clone(), vq.config.clone(), vq_weights)?,
        })
    }

    pub fn gpu(&self) -> &Rc<Gpu> {
        self.world.gpu()
    }

    /// `n` samples of target image codes (what [`crate::model::WorldModel::sample_codes`]
    /// computes with candle).
    pub async fn sample_codes(
        &self,
        world: &Model,
        source: &[u32],
        action: &[u32],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Vec<u32>>> {
        let mut sampler = ImageSampler::new(&world.format, n, sampling)?;
        let prompt = world.format.world_prompt(source, action)?;
        let mut one = self.world.cache(1);
        let first = self
            .world
            .forward(&prompt, &mut one, Positions::Last)
            .await?;
        let mut cache = self.world.repeat_cache(&one, n)?;
        let mut logits = first.repeat(n);
        while let Some(ids) = sampler.pick(&logits) {
            logits = self
                .world
                .forward(&ids, &mut cache, Positions::Last)
                .await?;
        }
        Ok(sampler.finish())
    }

    /// log p(action | source, candidate) of each candidate (what
    /// [`crate::model::DynamicsModel::score_codes`] computes with candle).
    pub async fn score_codes(
        &self,
        dynamics: &Model,
        source: &[u32],
        candidates: &[Vec<u32>],
        action: &[u32],
    ) -> Result<Vec<Score>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let plan = ScoringPlan::new(&dynamics.format, source, candidates, action)?;
        let d = &self.dynamics;
        let mut cache = if plan.prefix.is_empty() {
            d.cache(plan.n)
        } else {
            let mut one = d.cache(1);
            d.forward(&plan.prefix, &mut one, Positions::Last).await?;
            d.repeat_cache(&one, plan.n)?
        };
        let span = Positions::Span(plan.span.clone());
        let logits = d.forward(&plan.rest, &mut cache, span).await?;
        Ok(plan.scores(&logits))
    }

    /// Best-of-N: `(sample, codes, score)` best first.
    pub async fn rank_codes(
        &self,
        (world, dynamics): (&Model, &Model),
        source: &[u32],
        action: &[u32],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<(usize, Vec<u32>, Score)>> {
        let samples = self
            .sample_codes(world, source, action, n, sampling)
            .await?;
        let scores = self.score_codes(dynamics, source, &samples, action).await?;
        Ok(rank(samples, scores))
    }

    /// Images of codes.
    pub async fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<RgbImage>> {
        self.decoder.decode(codes).await
    }
}

#[cfg(all(test, feature = "fs"))]
mod tests {
    use super::super::block_on;
    use super::super::tests::gpu;
    use super::*;
    use crate::playground::Playground;
    use candle_core::Device;
    use std::sync::Arc;

    #[test]
    fn best_of_n_on_the_gpu_chooses_as_the_cpu_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let load = |name: &str| Arc::new(Model::load(&dir.join(name), &Device::Cpu).unwrap());
        let weights = |name: &str| std::fs::read(dir.join(name).join("model.safetensors")).unwrap();
        let (world, dynamics) = (load("world"), load("dynamics"));
        let verifier = GpuVerifier::new(
            gpu(),
            (&world, &weights("world")),
            (&dynamics, &weights("dynamics")),
            &weights("vq"),
        )
        .unwrap();
        let playground = Playground::new(world, dynamics.clone(), 1).unwrap();
        let action = playground.suggestions(1)[0].clone();
        let sampling = Sampling {
            seed: 5,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let on_gpu = block_on(
            playground.predict_gpu(&verifier, &action, 4, &sampling, |c| seen.push(c.rank)),
        )
        .unwrap();
        assert_eq!(seen, [0, 1, 2, 3]);
        let on_cpu = playground.predict(&action, 4, &sampling, |_| {}).unwrap();
        assert!(on_gpu.windows(2).all(|w| w[0].score >= w[1].score));
        // Logits agree to ~1e-6, so a sample can only differ where a random draw falls within
        // that of a boundary between two tokens: rare, but legitimate.
        let same = on_gpu
            .iter()
            .filter(|g| {
                on_cpu
                    .iter()
                    .any(|c| c.sample == g.sample && c.codes == g.codes)
            })
            .count();
        assert!(same >= 3, "only {same} of 4 samples equal the CPU's");
        // Scores and images of whatever the GPU sampled, against candle's.
        let cpu_dynamics = crate::model::DynamicsModel::new(dynamics.clone()).unwrap();
        let source = dynamics
            .encode_images(std::slice::from_ref(playground.source()))
            .unwrap()
            .remove(0);
        let ids = dynamics.encode_action(&action, Role::Dynamics).unwrap();
        let codes: Vec<Vec<u32>> = on_gpu.iter().map(|c| c.codes.clone()).collect();
        let scores = cpu_dynamics.score_codes(&source, &codes, &ids).unwrap();
        let images = dynamics.decode_images(&codes).unwrap();
        for ((c, s), img) in on_gpu.iter().zip(&scores).zip(&images) {
            assert!(
                (c.score - s.sum).abs() < 1e-3 * s.sum.abs().max(1.0),
                "{} vs {}",
                c.score,
                s.sum
            );
            let worst = c
                .image
                .as_raw()
                .iter()
                .zip(img.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(
                worst <= Some(1),
                "sample {}: pixels differ by {worst:?}",
                c.sample
            );
        }
    }
}
