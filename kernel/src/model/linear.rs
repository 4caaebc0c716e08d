//! A linear layer of the backbone, stored as HF does (`weight` is `(out, in)`), with the
//! hooks LoRA needs (an optional [`Adapter`], a frozen weight that skips its gradient) and the
//! inference fast paths (several projections as one matmul, row-streaming for a decode step).

use super::chameleon::Pass;
use super::lora::Adapter;
use crate::nn::gemv;
use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// A linear layer stored as HF does (`weight` is `(out, in)`), applied to `(rows, in)`,
/// optionally with a LoRA adapter ([`super::lora`]).
#[derive(Clone)]
pub(super) struct Linear {
    pub(super) weight: Tensor,
    pub(super) bias: Option<Tensor>,
    pub(super) lora: Option<Adapter>,
    /// The weight does not train (a LoRA base): skip its gradient.
    pub(super) frozen: bool,
}

impl Linear {
    pub(super) fn load(
        vb: VarBuilder,
        (i, o): (usize, usize),
        bias: bool,
        std: f64,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (o, i),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        let bias = if bias {
            Some(vb.get_with_hints(o, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Linear::plain(weight, bias, false))
    }

    /// A linear without an adapter.
    fn plain(weight: Tensor, bias: Option<Tensor>, frozen: bool) -> Linear {
        Linear {
            weight,
            bias,
            lora: None,
            frozen,
        }
    }

    /// Several linears that read the same input, as one matmul (`cat` of weights along `out`).
    /// Adapters are not carried over: see [`Linear::forward_parts`].
    pub(super) fn fused(parts: &[&Linear]) -> Result<Linear> {
        let weight = Tensor::cat(&parts.iter().map(|l| &l.weight).collect::<Vec<_>>(), 0)?;
        let bias = if parts.iter().all(|l| l.bias.is_some()) {
            let b: Vec<_> = parts.iter().filter_map(|l| l.bias.as_ref()).collect();
            Some(Tensor::cat(&b, 0)?)
        } else {
            None
        };
        Ok(Linear::plain(weight, bias, parts.iter().all(|l| l.frozen)))
    }

    /// The outputs of several linears side by side: one matmul for the frozen weights, plus
    /// each part's adapter update in its own columns.
    pub(super) fn forward_parts(parts: &[&Linear], x: &Tensor, pass: Pass) -> Result<Tensor> {
        let y = Linear::fused(parts)?.forward(x, pass)?;
        if parts.iter().all(|p| p.lora.is_none()) {
            return Ok(y);
        }
        let mut cols = Vec::with_capacity(parts.len());
        let mut at = 0;
        for p in parts {
            let n = p.weight.dim(0)?;
            let piece = y.narrow(1, at, n)?;
            cols.push(match &p.lora {
                Some(a) => (piece + a.delta(x, pass)?)?,
                None => piece,
            });
            at += n;
        }
        Tensor::cat(&cols, 1)
    }

    /// `x`: `(rows, in)`. Inference on a few rows (a decode step) streams the weight rows
    /// instead of packing them for a general matmul.
    pub(super) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let small = match pass {
            Pass::Infer => gemv::small_matmul_t(x, &self.weight)?,
            Pass::Train => None,
        };
        let y = match small {
            Some(y) => y,
            None if self.frozen && pass == Pass::Train => {
                crate::nn::frozen::frozen_matmul_t(x, &self.weight)?
            }
            None => x.matmul(&self.weight.t()?)?,
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        match &self.lora {
            Some(a) => y + a.delta(x, pass)?,
            None => Ok(y),
        }
    }
}
