//! Weights as dynaboot saves and reads them: a safetensors file whose metadata records the
//! config the weights were trained with, read back with every check a model needs before it
//! is used: values finite, the config beside the weights equal to the one they were saved with
//! (but for fields that cannot change what the model computes), every tensor the config
//! implies present with its shape, and no tensor left over.

use crate::error::{Error, Result, candle_reason};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The metadata key that holds the config (JSON) the weights were saved with.
const CONFIG_KEY: &str = "dynaboot.config";

/// The metadata to save with weights trained under `config`.
#[cfg(feature = "fs")]
pub(crate) fn metadata(config: &impl Serialize) -> HashMap<String, String> {
    let json = serde_json::to_string(config).expect("configs serialise");
    HashMap::from([(CONFIG_KEY.to_string(), json)])
}

/// The tensors of a safetensors file and the config recorded in its metadata (none in weights
/// saved before dynaboot recorded it, and in other projects' files).
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    saved: Option<Value>,
    /// The file, as messages name it.
    file: String,
}

impl Weights {
    /// Reads safetensors bytes (`file` names them in errors), refusing a file that is not
    /// safetensors, unreadable metadata, or NaN and infinite values.
    pub fn read(bytes: &[u8], file: &str) -> Result<Self> {
        let unreadable = |e: String| {
            Error::Invalid(format!(
                "{file} cannot be read ({e}); the file is truncated or not safetensors: copy or \
                 train the checkpoint again"
            ))
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        let saved = match header.metadata().as_ref().and_then(|m| m.get(CONFIG_KEY)) {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| {
                Error::Invalid(format!(
                    "{file}: the config recorded in its metadata (`{CONFIG_KEY}`) is not JSON \
                     ({e}); the file was damaged: copy or train the checkpoint again"
                ))
            })?),
            None => None,
        };
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| unreadable(candle_reason(&e)))?;
        let weights = Weights {
            tensors,
            saved,
            file: file.to_string(),
        };
        weights.check_finite()?;
        Ok(weights)
    }

    /// Refuses weights holding NaN or infinite values (a run that diverged, a damaged copy):
    /// they would load and then print empty actions with a NaN log-likelihood.
    fn check_finite(&self) -> Result<()> {
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        for name in names {
            let values = self.tensors[name]
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                return Err(Error::Invalid(format!(
                    "{}: `{name}` holds {bad} NaN or infinite values of {}; the weights are \
                     broken (a run that diverged?): train again, or export an earlier checkpoint",
                    self.file,
                    values.len()
                )));
            }
        }
        Ok(())
    }

    /// Refuses `config` (read from `config_file`) unless it equals the config the weights were
    /// saved with, leaving out the fields in `inert` (dotted paths: fields that cannot change
    /// what the model computes, such as an initialiser's range or where a folder lives).
    /// Weights without a recorded config pass: only their tensors can be checked.
    pub(crate) fn check_config(
        &self,
        config: &impl Serialize,
        config_file: &str,
        inert: &[&str],
    ) -> Result<()> {
        let Some(saved) = &self.saved else {
            return Ok(());
        };
        let given = serde_json::to_value(config).expect("configs serialise");
        match first_difference(saved, &given, "", inert) {
            None => Ok(()),
            Some((field, was, now)) => Err(Error::Invalid(format!(
                "{config_file}: `{field}` is {now} but {} was saved with {was} (its metadata \
                 records the config the weights were trained with): set `{field}` back to {was}; \
                 the weights compute something else under any other value",
                self.file,
                now = show(now),
                was = show(was)
            ))),
        }
    }

    /// The tensors by name (for copying them, not for a model: [`Weights::build`] checks
    /// that the config uses every one).
    #[cfg(feature = "fs")]
    pub(crate) fn into_tensors(self) -> HashMap<String, Tensor> {
        self.tensors
    }

    /// Builds a model with `build` from these tensors, then refuses any tensor it did not
    /// use (a config that asks for fewer layers than the weights hold would otherwise load
    /// and ignore them). A tensor missing or of another shape is refused by `build`'s error,
    /// which names it.
    pub(crate) fn build<T, E: std::fmt::Display>(
        self,
        config_file: &str,
        device: &Device,
        build: impl FnOnce(VarBuilder<'_>) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let names: BTreeSet<String> = self.tensors.keys().cloned().collect();
        let used = Arc::new(Mutex::new(BTreeSet::new()));
        let backend = Tracked {
            tensors: self.tensors,
            used: used.clone(),
        };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let model = build(vb).map_err(|e| {
            Error::Invalid(format!(
                "{} does not match {config_file} ({e}); the two must come from the same \
                 checkpoint",
                self.file
            ))
        })?;
        let used = used.lock().expect("not poisoned");
        let unused: Vec<&String> = names.difference(&used).collect();
        if let Some(first) = unused.first() {
            return Err(Error::Invalid(format!(
                "{} holds {} tensor(s) that {config_file} gives no place to, first `{first}`: \
                 the config describes a smaller model than the weights (fewer layers?); use the \
                 config.json saved with these weights",
                self.file,
                unused.len()
            )));
        }
        Ok(model)
    }
}

/// A value as a message shows it.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        v => v.to_string(),
    }
}

/// The first field (dotted path, in key order) where `a` and `b` differ, with both values,
/// skipping the paths in `inert`.
fn first_difference<'v>(
    a: &'v Value,
    b: &'v Value,
    path: &str,
    inert: &[&str],
) -> Option<(String, &'v Value, &'v Value)> {
    if inert.contains(&path) {
        return None;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(va, vb, &p, inert)
            })
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a, b)),
    }
}

/// A tensor map that records which names a model asked for.
struct Tracked {
    tensors: HashMap<String, Tensor>,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl Tracked {
    fn record(&self, name: &str) {
        self.used
            .lock()
            .expect("not poisoned")
            .insert(name.to_string());
    }
}

impl SimpleBackend for Tracked {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.record(name);
        SimpleBackend::get(&self.tensors, s, name, h, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.record(name);
        SimpleBackend::get_unchecked(&self.tensors, name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Cfg {
        layers: usize,
        eps: f64,
        init: f64,
        meta: Meta,
    }

    #[derive(Serialize)]
    struct Meta {
        path: String,
        roles: Vec<&'static str>,
    }

    fn cfg() -> Cfg {
        Cfg {
            layers: 2,
            eps: 1e-5,
            init: 0.02,
            meta: Meta {
                path: "../vq".into(),
                roles: vec!["world"],
            },
        }
    }

    fn bytes(layers: usize, config: Option<&Cfg>) -> Vec<u8> {
        let tensors: Vec<(String, Tensor)> = (0..layers)
            .map(|i| {
                let t = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
                (format!("layers.{i}.w"), t)
            })
            .collect();
        safetensors::serialize(
            tensors.iter().map(|(n, t)| (n.as_str(), t)),
            config.map(metadata),
        )
        .unwrap()
    }

    /// A model of `layers` layers, each a (2, 3) weight.
    fn model(vb: VarBuilder, layers: usize) -> candle_core::Result<Vec<Tensor>> {
        (0..layers)
            .map(|i| vb.pp(format!("layers.{i}")).get((2, 3), "w"))
            .collect()
    }

    const INERT: &[&str] = &["init", "meta.path"];

    #[test]
    fn the_saved_config_is_compared_field_by_field_but_for_inert_fields() {
        let saved = cfg();
        let w = Weights::read(&bytes(2, Some(&saved)), "model.safetensors").unwrap();
        assert!(w.check_config(&saved, "config.json", INERT).is_ok());
        let moved = Cfg {
            init: 0.5,
            meta: Meta {
                path: "elsewhere/vq".into(),
                roles: vec!["world"],
            },
            ..cfg()
        };
        assert!(w.check_config(&moved, "config.json", INERT).is_ok());
        let eps = Cfg { eps: 1e-6, ..cfg() };
        let e = w
            .check_config(&eps, "config.json", INERT)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`eps`") && e.contains("0.00001") && e.contains("model.safetensors"),
            "{e}"
        );
        let roles = Cfg {
            meta: Meta {
                path: "../vq".into(),
                roles: vec!["world", "dynamics"],
            },
            ..cfg()
        };
        let e = w
            .check_config(&roles, "config.json", INERT)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`meta.roles`") && e.contains("[\"world\"]"),
            "{e}"
        );
        // Weights saved without a config: only their tensors can be checked.
        let old = Weights::read(&bytes(2, None), "model.safetensors").unwrap();
        assert!(old.check_config(&eps, "config.json", INERT).is_ok());
    }

    #[test]
    fn every_tensor_must_be_used_and_every_one_asked_for_present() {
        let read = || Weights::read(&bytes(4, None), "model.safetensors").unwrap();
        let all = read()
            .build("config.json", &Device::Cpu, |vb| model(vb, 4))
            .unwrap();
        assert_eq!(all.len(), 4);
        let e = read()
            .build("config.json", &Device::Cpu, |vb| model(vb, 2))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("2 tensor(s)") && e.contains("`layers.2.w`"),
            "{e}"
        );
        let e = read()
            .build("config.json", &Device::Cpu, |vb| model(vb, 5))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("layers.4.w") && e.contains("config.json"), "{e}");
        let e = read()
            .build("config.json", &Device::Cpu, |vb| {
                vb.pp("layers.0").get((3, 2), "w")
            })
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("layers.0.w") && e.contains("shape"), "{e}");
    }

    #[test]
    fn damaged_files_and_values_are_refused_by_name() {
        let e = Weights::read(b"not safetensors", "vq/model.safetensors")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("vq/model.safetensors") && e.contains("truncated"),
            "{e}"
        );
        let t = Tensor::new(&[1.0f32, f32::NAN], &Device::Cpu).unwrap();
        let b = safetensors::serialize([("w", &t)], None).unwrap();
        let e = Weights::read(&b, "model.safetensors")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`w` holds 1 NaN"), "{e}");
        let bad = HashMap::from([(CONFIG_KEY.to_string(), "{not json".to_string())]);
        let b = safetensors::serialize([("w", &t)], Some(bad)).unwrap();
        let e = Weights::read(&b, "model.safetensors")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(CONFIG_KEY) && e.contains("damaged"), "{e}");
    }
}
