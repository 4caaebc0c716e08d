//! Training examples as the model sees them: image codes of source and target, action token
//! ids, and the recognition weights of the target positions (computed once per example from
//! the VQ encoder's pre-quantisation features, and cached with the dataset on disk).

use super::loss::recognition_weights;
use crate::error::Result;
use crate::tokenize::{ImageCodec, TextTokenizer};
use image::RgbImage;

/// One labelled triplet, tokenised.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The source image's codes.
    pub source: Vec<u32>,
    /// The target image's codes.
    pub target: Vec<u32>,
    /// The action's text token ids.
    pub action: Vec<u32>,
    /// Recognition weights of the target positions, mean 1 (see [`super::loss`]).
    pub recognition_weights: Vec<f32>,
    /// The family name (AURORA's `task` field).
    pub family: String,
    /// Text ids of descriptions of the source and the target scene
    /// ([`crate::world::describe_scene`]) where the data knows the scenes (the embedded
    /// world's sidecar); empty otherwise.
    pub descriptions: Vec<Vec<u32>>,
    /// Text ids of the description of what changed from source to target
    /// ([`crate::world::describe_change`]), where the data knows the scenes; empty otherwise.
    pub change: Vec<u32>,
}

/// A (source, target) image pair as codes, with the recognition weights of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct CodedPair {
    pub(crate) source: Vec<u32>,
    pub(crate) target: Vec<u32>,
    /// Recognition weights of the target positions, mean 1.
    pub recognition_weights: Vec<f32>,
}

/// Image codes and recognition weights of (source, target) image pairs, 32 pairs at a time.
pub fn encode_pairs(vq: &ImageCodec, pairs: &[(RgbImage, RgbImage)]) -> Result<Vec<CodedPair>> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(32) {
        let imgs: Vec<RgbImage> = chunk
            .iter()
            .flat_map(|(s, t)| [s.clone(), t.clone()])
            .collect();
        let enc = vq.encode(&imgs)?;
        for i in 0..chunk.len() {
            let (s, t) = (2 * i, 2 * i + 1);
            out.push(CodedPair {
                source: enc.codes[s].clone(),
                target: enc.codes[t].clone(),
                recognition_weights: recognition_weights(
                    &enc.features[s],
                    &enc.features[t],
                    enc.code_dim,
                ),
            });
        }
    }
    Ok(out)
}

/// Tokenises labelled triplets `(source, target, action text, task)`.
pub fn tokenize(
    vq: &ImageCodec,
    text: &TextTokenizer,
    triplets: &[(RgbImage, RgbImage, String, String)],
) -> Result<Vec<Example>> {
    let pairs: Vec<_> = triplets
        .iter()
        .map(|(s, t, _, _)| (s.clone(), t.clone()))
        .collect();
    let coded = encode_pairs(vq, &pairs)?;
    coded
        .into_iter()
        .zip(triplets)
        .map(|(c, (_, _, action, task))| {
            Ok(Example {
                source: c.source,
                target: c.target,
                recognition_weights: c.recognition_weights,
                action: text.encode(action.trim())?,
                family: task.clone(),
                descriptions: Vec::new(),
                change: Vec::new(),
            })
        })
        .collect()
}

/// Loads the labelled rows of an AURORA folder as examples. Image codes and recognition
/// weights are cached in `tokens-<fingerprint>.safetensors` beside the json, keyed by the
/// image tokenizer's fingerprint; rows without an `output` image are skipped.
#[cfg(feature = "fs")]
pub fn load_examples(
    dir: &std::path::Path,
    vq: &ImageCodec,
    vq_fingerprint: &str,
    text: &TextTokenizer,
) -> Result<Vec<Example>> {
    use crate::data::AuroraDataset;
    use crate::error::Error;
    use candle_core::Tensor;
    let ds = AuroraDataset::load(dir)?;
    let labelled: Vec<usize> = (0..ds.rows.len())
        .filter(|&i| ds.rows[i].output.is_some())
        .collect();
    if labelled.is_empty() {
        return Err(Error::Malformed {
            file: ds.json.display().to_string(),
            row: None,
            field: Some("output".into()),
            message:
                "no row has an output image; training needs (input, instruction, output) triplets"
                    .into(),
        });
    }
    let stem = ds
        .json
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cache = ds
        .json
        .with_file_name(format!("{stem}.tokens-{vq_fingerprint}.safetensors"));
    let n = labelled.len();
    let t = vq.tokens_per_image();
    let cached = candle_core::safetensors::load(&cache, vq.device())
        .ok()
        .filter(|m| m.get("source").is_some_and(|s| s.dims() == [n, t]));
    let coded: Vec<CodedPair> = match cached {
        Some(m) => {
            let get = |k: &str| {
                m.get(k)
                    .cloned()
                    .ok_or_else(|| Error::Invalid(format!("{}: no `{k}`", cache.display())))
            };
            let s = get("source")?.to_vec2::<u32>()?;
            let tg = get("target")?.to_vec2::<u32>()?;
            let w = get("change")?.to_vec2::<f32>()?;
            s.into_iter()
                .zip(tg)
                .zip(w)
                .map(|((source, target), recognition_weights)| CodedPair {
                    source,
                    target,
                    recognition_weights,
                })
                .collect()
        }
        None => {
            let mut pairs = Vec::with_capacity(n);
            for &i in &labelled {
                let out = ds.output_image(i)?.expect("filtered to labelled rows");
                pairs.push((ds.input_image(i)?, out));
            }
            let coded = encode_pairs(vq, &pairs)?;
            let flat_u = |f: fn(&CodedPair) -> &Vec<u32>| -> Vec<u32> {
                coded.iter().flat_map(|c| f(c).iter().copied()).collect()
            };
            let dev = vq.device();
            let tensors = vec![
                (
                    "source".to_string(),
                    Tensor::from_vec(flat_u(|c| &c.source), (n, t), dev)?,
                ),
                (
                    "target".to_string(),
                    Tensor::from_vec(flat_u(|c| &c.target), (n, t), dev)?,
                ),
                (
                    // The cache's name for the recognition weights (kept: caches stay valid).
                    "change".to_string(),
                    Tensor::from_vec(
                        coded
                            .iter()
                            .flat_map(|c| c.recognition_weights.iter().copied())
                            .collect::<Vec<f32>>(),
                        (n, t),
                        dev,
                    )?,
                ),
            ];
            // The cache only saves time: a read-only dataset folder still trains.
            let _ = crate::files::write_safetensors(&cache, &tensors, None);
            coded
        }
    };
    labelled
        .iter()
        .zip(coded)
        .map(
            |(
                &i,
                CodedPair {
                    source,
                    target,
                    recognition_weights,
                },
            )| {
                let row = &ds.rows[i];
                let action = text.encode(row.instruction.trim())?;
                if action.is_empty() {
                    return Err(Error::Malformed {
                        file: ds.json.display().to_string(),
                        row: Some(i),
                        field: Some("instruction".into()),
                        message: "the instruction is empty; every training row needs an action"
                            .into(),
                    });
                }
                let (descriptions, change) = match &row.sidecar {
                    Some(s) => (
                        [&s.source_state, &s.target_state]
                            .into_iter()
                            .map(|scene| text.encode(&crate::world::describe_scene(scene, i)))
                            .collect::<Result<_>>()?,
                        text.encode(&crate::world::describe_change(
                            &s.source_state,
                            &s.target_state,
                            i,
                        ))?,
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                Ok(Example {
                    source,
                    target,
                    action,
                    recognition_weights,
                    family: row.family.clone(),
                    descriptions,
                    change,
                })
            },
        )
        .collect()
}
