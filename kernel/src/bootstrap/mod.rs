//! Weak supervision (the paper's strategy 1): the dynamics model labels unlabelled videos.
//!
//! [`frames`] picks (frame, later frame) pairs where something moved; `annotate` has the
//! dynamics model sample an action for each pair with its likelihood; `filter` keeps the
//! stratified top-K. The kept pairs become world-model training rows (task `synthetic`).
//! [`AnnotatorQuality`] compares annotations with the videos' hidden labels — for reporting
//! only; training never sees those labels.

pub(crate) mod filter;
pub mod frames;

pub(crate) use filter::stratified_top_k;
pub use frames::{FramePair, FrameSelection, select_pairs};

use crate::data::video::VideoLabels;
#[cfg(feature = "fs")]
use crate::error::Result;
use crate::eval::text::corpus_bleu;
#[cfg(feature = "fs")]
use crate::model::DynamicsModel;
use crate::model::Sampling;
use crate::world::parse;
#[cfg(feature = "fs")]
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The task name of annotated rows.
#[cfg(feature = "fs")]
pub(crate) const SYNTHETIC_TASK: &str = "synthetic";

/// Frames a pair may be off a labelled action at either end and still span it (the world's
/// motion eases in and out, so the first and last moving frames barely differ from the stills).
pub(crate) const PAIR_TOLERANCE: usize = 2;

/// The temperature annotations are sampled at. The paper samples them; at 1 the shipped
/// dynamics model gets 52 % of the video pairs that span one action exactly right, at 0.5
/// 68 %, greedy 72 % (100 videos of the train generator, seed 22): 0.5 keeps sampling and
/// most of the accuracy.
pub const ANNOTATION_TEMPERATURE: f64 = 0.5;

/// Class of annotations the parser cannot read.
pub(crate) const UNPARSED_CLASS: &str = "unparsed";

/// How unlabelled videos become synthetic triplets: frame selection, annotation, filtering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Which frame pairs of each video are annotated.
    pub frames: FrameSelection,
    /// K of the stratified top-K: annotated pairs kept in all.
    pub keep: usize,
    /// How the dynamics model samples the actions (the paper samples; here at
    /// [`ANNOTATION_TEMPERATURE`]).
    pub sampling: Sampling,
    /// Pairs explained per batch.
    pub batch: usize,
    /// Whether annotations the world's parser cannot read are dropped before filtering.
    pub drop_unparsed: bool,
}

impl BootstrapConfig {
    /// The default frame selection and filter, keeping `keep` annotations sampled at
    /// `temperature` from the streams of `seed`.
    #[cfg(feature = "fs")]
    pub(crate) fn sampled(keep: usize, seed: u64, temperature: f64) -> BootstrapConfig {
        BootstrapConfig {
            keep,
            sampling: Sampling {
                seed,
                temperature,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            frames: FrameSelection::default(),
            keep: 1000,
            sampling: Sampling {
                temperature: ANNOTATION_TEMPERATURE,
                ..Sampling::default()
            },
            batch: 16,
            drop_unparsed: true,
        }
    }
}

/// One annotated frame pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Index of the video in its dataset.
    pub video: usize,
    /// The pair of frames.
    pub pair: FramePair,
    /// The action the dynamics model wrote for it.
    pub text: String,
    /// The action class (verb of the parsed action, or `UNPARSED_CLASS`).
    pub class: String,
    /// log p(text | before, after) per token, the filter's likelihood.
    pub likelihood: f32,
}

/// Annotates the frame pairs of one video; pair `k` of the video samples from stream
/// `(sampling.seed + video, k)`, so results do not depend on batching.
#[cfg(feature = "fs")]
pub(crate) fn annotate_video(
    dynamics: &DynamicsModel,
    video: usize,
    frames: &[RgbImage],
    config: &BootstrapConfig,
) -> Result<Vec<Annotation>> {
    let pairs = select_pairs(frames, &config.frames);
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let m = &dynamics.model;
    let mut wanted: Vec<usize> = pairs.iter().flat_map(|p| [p.before, p.after]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let imgs: Vec<RgbImage> = wanted.iter().map(|&i| frames[i].clone()).collect();
    let codes = m.encode_images(&imgs)?;
    let code_of = |f: usize| codes[wanted.binary_search(&f).expect("encoded")].clone();
    let coded: Vec<(Vec<u32>, Vec<u32>)> = pairs
        .iter()
        .map(|p| (code_of(p.before), code_of(p.after)))
        .collect();
    let sampling = Sampling {
        seed: config.sampling.seed.wrapping_add(video as u64),
        ..config.sampling.clone()
    };
    let explained = dynamics.explain_codes(&coded, &sampling)?;
    Ok(pairs
        .into_iter()
        .zip(explained)
        .map(|(pair, e)| Annotation {
            video,
            pair,
            class: parse(&e.text)
                .map(|a| a.verb().to_string())
                .unwrap_or_else(|_| UNPARSED_CLASS.into()),
            text: e.text,
            likelihood: e.score.mean,
        })
        .collect())
}

/// The stratified top-K of `annotations` (unparsed ones dropped first when configured), in
/// the filter's order.
pub fn filter_annotations(annotations: &[Annotation], config: &BootstrapConfig) -> Vec<Annotation> {
    let usable: Vec<&Annotation> = annotations
        .iter()
        .filter(|a| !(config.drop_unparsed && a.class == UNPARSED_CLASS))
        .collect();
    let items: Vec<(String, f32)> = usable
        .iter()
        .map(|a| (a.class.clone(), a.likelihood))
        .collect();
    stratified_top_k(&items, config.keep)
        .into_iter()
        .map(|i| usable[i].clone())
        .collect()
}

/// How good the annotations are, against the videos' hidden labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotatorQuality {
    /// Annotated pairs measured.
    pub pairs: usize,
    /// Share of pairs that span exactly one labelled action (`PAIR_TOLERANCE` frames at either end).
    pub pair_precision: f64,
    /// Share of labelled actions some pair spans.
    pub pair_recall: f64,
    /// Share of pairs whose parsed annotation is the labelled action (unmatched pairs count
    /// as wrong).
    pub exact: f64,
    /// Share of the pairs spanning one labelled action whose annotation is that action: the
    /// annotator's own accuracy, apart from frame selection's.
    #[serde(default)]
    pub exact_spanning: f64,
    /// Corpus BLEU-4 of annotations against the label texts, over matched pairs.
    pub bleu: f64,
    /// Pairs per action class.
    pub(crate) classes: BTreeMap<String, usize>,
}

/// Compares annotations with hidden labels (`labels[a.video]` belongs to annotation `a`).
pub fn annotator_quality(annotations: &[Annotation], labels: &[VideoLabels]) -> AnnotatorQuality {
    let mut matched = 0;
    let mut exact = 0;
    let mut texts = Vec::new();
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    let mut spanned = std::collections::BTreeSet::new();
    for a in annotations {
        *classes.entry(a.class.clone()).or_default() += 1;
        let Some(video) = labels.get(a.video) else {
            continue;
        };
        let seg = video.segments.iter().enumerate().find(|(_, s)| {
            s.start.abs_diff(a.pair.before) <= PAIR_TOLERANCE
                && s.end.abs_diff(a.pair.after) <= PAIR_TOLERANCE
        });
        if let Some((k, s)) = seg {
            matched += 1;
            spanned.insert((a.video, k));
            exact += usize::from(parse(&a.text).is_ok_and(|p| p == s.action));
            texts.push((a.text.as_str(), s.text.as_str()));
        }
    }
    let n = annotations.len().max(1) as f64;
    let videos: std::collections::BTreeSet<usize> = annotations.iter().map(|a| a.video).collect();
    let labelled: usize = videos
        .iter()
        .filter_map(|&v| labels.get(v))
        .map(|l| l.segments.len())
        .sum();
    AnnotatorQuality {
        pairs: annotations.len(),
        pair_precision: matched as f64 / n,
        pair_recall: spanned.len() as f64 / labelled.max(1) as f64,
        exact: exact as f64 / n,
        exact_spanning: exact as f64 / matched.max(1) as f64,
        bleu: corpus_bleu(&texts),
        classes,
    }
}

/// Annotates every video of a dataset; `progress` gets the number of videos done.
#[cfg(feature = "fs")]
pub fn annotate_videos(
    dynamics: &DynamicsModel,
    videos: &crate::data::VideoDataset,
    config: &BootstrapConfig,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Annotation>> {
    let size = dynamics.model.vq.image_size() as u32;
    let mut out = Vec::new();
    for v in 0..videos.videos.len() {
        let frames = videos.frames_sized(v, size)?;
        out.extend(annotate_video(dynamics, v, &frames, config)?);
        progress(v + 1);
    }
    Ok(out)
}

/// Writes annotations as an AURORA folder of task `SYNTHETIC_TASK` (frames copied as PNGs).
#[cfg(feature = "fs")]
pub fn write_synthetic(
    dir: &std::path::Path,
    videos: &crate::data::VideoDataset,
    annotations: &[Annotation],
) -> Result<std::path::PathBuf> {
    let mut writer = crate::data::AuroraWriter::new(dir)?;
    let mut loaded: Option<(usize, Vec<RgbImage>)> = None;
    for (i, a) in annotations.iter().enumerate() {
        if loaded.as_ref().is_none_or(|(v, _)| *v != a.video) {
            loaded = Some((a.video, videos.frames(a.video)?));
        }
        let frames = &loaded.as_ref().expect("loaded above").1;
        let id = format!("syn{i:05}");
        writer.push(
            &id,
            &frames[a.pair.before],
            Some(&frames[a.pair.after]),
            crate::data::Row {
                input: String::new(),
                output: None,
                instruction: a.text.clone(),
                family: SYNTHETIC_TASK.into(),
                id: None,
                sidecar: None,
            },
        )?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::generate::{Segment, random_video, rng};
    use crate::world::{RenderConfig, VideoConfig};

    #[test]
    fn frame_selection_finds_the_labelled_actions_of_world_videos() {
        let mut r = rng(3);
        let render = RenderConfig::default();
        let (mut hits, mut total, mut right, mut pairs_n) = (0, 0, 0, 0);
        let spans = |s: &Segment, p: &FramePair| {
            s.start.abs_diff(p.before) <= PAIR_TOLERANCE
                && s.end.abs_diff(p.after) <= PAIR_TOLERANCE
        };
        for _ in 0..8 {
            let v = random_video(&mut r, VideoConfig::default(), render);
            let pairs = select_pairs(&v.frames, &FrameSelection::default());
            pairs_n += pairs.len();
            total += v.segments.len();
            hits += v
                .segments
                .iter()
                .filter(|s| pairs.iter().any(|p| spans(s, p)))
                .count();
            right += pairs
                .iter()
                .filter(|p| v.segments.iter().any(|s| spans(s, p)))
                .count();
        }
        // Under camera shake and light flicker: on 200 videos of the train generator (seeds 21
        // and 22) it finds 65-67 % of the actions with 79-80 % of its pairs spanning exactly
        // one (the motion-run proxy it replaced: 54-55 % with 75-78 %).
        assert!(2 * hits >= total, "{hits} of {total} actions found");
        assert!(
            10 * right >= 6 * pairs_n,
            "{right} of {pairs_n} pairs span one action"
        );
    }

    fn annotation(video: usize, before: usize, after: usize, text: &str) -> Annotation {
        Annotation {
            video,
            pair: FramePair { before, after },
            text: text.into(),
            class: parse(text)
                .map(|a| a.verb().to_string())
                .unwrap_or_else(|_| UNPARSED_CLASS.into()),
            likelihood: -1.0,
        }
    }

    #[test]
    fn quality_against_hidden_labels() {
        let mut r = rng(4);
        let v = random_video(
            &mut r,
            VideoConfig {
                actions: 2,
                ..Default::default()
            },
            RenderConfig {
                size: 32,
                ..Default::default()
            },
        );
        let segs: &[Segment] = &v.segments;
        assert_eq!(segs.len(), 2);
        let labels = vec![VideoLabels {
            id: "v".into(),
            segments: segs.to_vec(),
        }];
        let anns = vec![
            annotation(0, segs[0].start, segs[0].end, &segs[0].text),
            annotation(0, segs[1].start + 1, segs[1].end, "gibberish words"),
            annotation(0, 0, 1, &segs[0].text),
        ];
        let q = annotator_quality(&anns, &labels);
        assert_eq!(q.pairs, 3);
        assert!((q.pair_precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((q.pair_recall - 1.0).abs() < 1e-12);
        assert!((q.exact - 1.0 / 3.0).abs() < 1e-12);
        assert!((q.exact_spanning - 0.5).abs() < 1e-12);
        assert_eq!(q.classes.get(UNPARSED_CLASS), Some(&1));
    }

    #[test]
    fn filtering_drops_unparsed_and_balances_classes() {
        let mut anns = vec![
            annotation(0, 0, 5, "open the red box"),
            annotation(0, 5, 9, "remove the blue cube"),
            annotation(1, 0, 5, "zzz"),
        ];
        anns[2].likelihood = 0.0; // the likeliest, yet unreadable
        let cfg = BootstrapConfig {
            keep: 10,
            ..Default::default()
        };
        let kept = filter_annotations(&anns, &cfg);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|a| a.class != UNPARSED_CLASS));
        let all = filter_annotations(
            &anns,
            &BootstrapConfig {
                drop_unparsed: false,
                ..cfg
            },
        );
        assert_eq!(all.len(), 3);
    }
}
