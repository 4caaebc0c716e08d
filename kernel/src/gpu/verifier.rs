//! Best-of-N on the GPU: the world model, the dynamics model and the image decoder as wgpu
//! models ([`GpuChameleon`], [`GpuVqDecoder`]). The sampling, scoring and ranking are the
//! candle path's own ([`crate::model::verifier::best_of_n`] over the
//! [`crate::model::backbone::Backbone`] interface),
//! so both backends choose alike.

use super::{Gpu, GpuChameleon, GpuVqDecoder};
use crate::error::{Error, Result};
use crate::imagination::plan::{Search, imagine_and_search};
use crate::imagination::{PlanConfig, PlanNode};
use crate::model::verifier::{Ranked, best_of_n, check_compatible};
use crate::model::{Model, Role, Sampling};
use crate::tokenize::ImageCodec;
use image::RgbImage;
use std::rc::Rc;

/// A world model, a dynamics model and the image decoder on the GPU, for best-of-N.
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
        world.config.require_role(Role::World)?;
        dynamics.config.require_role(Role::Dynamics)?;
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

    /// The GPU the models live on.
    pub fn gpu(&self) -> &Rc<Gpu> {
        self.world.gpu()
    }

    /// Best-of-N (what [`crate::model::Verifier::rank_codes`] computes with candle).
    pub(crate) async fn rank_codes(
        &self,
        (world, dynamics): (&Model, &Model),
        source: &[u32],
        action: &[u32],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Ranked>> {
        best_of_n(
            (&self.world, &world.format),
            (&self.dynamics, &dynamics.format),
            source,
            action,
            n,
            sampling,
        )
        .await
    }

    /// The planner's search with both models on the GPU (what
    /// [`crate::imagination::Imagination::plan`] runs with candle, the same code).
    pub(crate) async fn plan_codes(
        &self,
        (world, dynamics): (&Model, &Model),
        (start, goal): (&[u32], &[u32]),
        cfg: &PlanConfig,
        on_node: impl FnMut(&PlanNode),
    ) -> Result<Search> {
        imagine_and_search(
            (&self.world, &world.format),
            (&self.dynamics, &dynamics.format),
            &dynamics.text,
            (start, goal),
            cfg,
            on_node,
        )
        .await
    }

    /// Images of codes.
    pub(crate) async fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<RgbImage>> {
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

    /// The shipped pair on the GPU, and a playground over it on the CPU (scene seed 1); the
    /// dynamics model's checkpoint for candle's own scoring.
    fn shipped_pair() -> (GpuVerifier, Playground, Arc<Model>) {
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
        (verifier, playground, dynamics)
    }

    #[test]
    fn best_of_n_on_the_gpu_chooses_as_the_cpu_does() {
        let (verifier, playground, dynamics) = shipped_pair();
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
        assert!(on_gpu.windows(2).all(|w| w[0].score.sum >= w[1].score.sum));
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
                (c.score.sum - s.sum).abs() < 1e-3 * s.sum.abs().max(1.0),
                "{} vs {}",
                c.score.sum,
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

    #[test]
    fn a_plan_on_the_gpu_searches_as_on_the_cpu() {
        let (verifier, playground, _) = shipped_pair();
        let goal = playground.goal(2, 1).unwrap();
        let cfg = PlanConfig {
            depth: 1,
            beam: 1,
            proposals: 3,
            n: 2,
            ..PlanConfig::default()
        };
        let mut streamed = Vec::new();
        let on_gpu = block_on(
            playground.plan_gpu(&verifier, &goal.image, &cfg, |node, image| {
                streamed.push((node.proposed.clone(), image.dimensions()))
            }),
        )
        .unwrap();
        let on_cpu = playground.plan(&goal.image, &cfg, |_, _| {}).unwrap();
        // The proposals are greedy readings and samples of the same start codes: alike on both.
        let proposed = |p: &crate::imagination::Plan| {
            p.tree
                .iter()
                .map(|n| n.proposed.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(proposed(&on_gpu), proposed(&on_cpu));
        assert_eq!(streamed.len(), on_gpu.tree.len() - 1);
        assert!(streamed.iter().all(|s| s.1 == (64, 64)));
        assert_eq!(on_gpu.steps.len(), on_gpu.images.len());
        assert_eq!(on_gpu.steps.len(), 1);
    }
}
