//! The KV cache of the candle backbone: keys and values of the positions seen so far, per
//! layer, in preallocated buffers so that a decode step costs the same at any length. Buffers
//! start at [`INITIAL_POSITIONS`] (or the context, if shorter) and double when full, so a
//! long context (Chameleon's 4096) costs memory only as far as it is used.

use super::chameleon::ChameleonConfig;
use candle_core::{Result, Tensor};

/// Positions a cache's buffers hold at first.
pub(crate) const INITIAL_POSITIONS: usize = 256;

/// Keys and values of the positions seen so far, per layer, in preallocated buffers so that a
/// decode step costs the same at any length.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    /// Positions the buffers hold now.
    capacity: usize,
    /// The model's context (`max_position_embeddings`): the most positions it may hold.
    limit: usize,
    /// Sequences it holds.
    batch: usize,
}

impl KvCache {
    /// An empty cache for one sequence.
    pub fn new(config: &ChameleonConfig) -> Self {
        Self::with_batch(config, 1)
    }

    /// An empty cache for `batch` sequences.
    pub(crate) fn with_batch(config: &ChameleonConfig, batch: usize) -> Self {
        KvCache {
            layers: vec![None; config.num_hidden_layers],
            len: 0,
            capacity: config.max_position_embeddings.min(INITIAL_POSITIONS),
            limit: config.max_position_embeddings,
            batch,
        }
    }

    /// Sequences it holds.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Positions cached so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Repeats a batch-1 cache `n` times along the batch: one prefill serves `n` samples.
    pub(crate) fn repeat_batch(&mut self, n: usize) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            if k.dim(0)? != 1 {
                candle_core::bail!("repeat_batch needs a cache of batch 1, got {}", k.dim(0)?);
            }
            *k = k.repeat((n, 1, 1, 1))?;
            *v = v.repeat((n, 1, 1, 1))?;
        }
        self.batch = n;
        Ok(())
    }

    /// Appends `(batch, kv_heads, t, head_dim)` keys and values of layer `i`; returns all of them.
    pub(super) fn append(&mut self, i: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        if self.len + t > self.limit {
            candle_core::bail!(
                "sequence of {} tokens exceeds max_position_embeddings {}",
                self.len + t,
                self.limit
            );
        }
        if self.len + t > self.capacity {
            self.grow(self.len + t)?;
        }
        if self.layers[i].is_none() {
            let (b, h, _, d) = k.dims4()?;
            let buf = || Tensor::zeros((b, h, self.capacity, d), k.dtype(), k.device());
            self.layers[i] = Some((buf()?, buf()?));
        }
        let (kb, vb) = self.layers[i].as_ref().expect("allocated above");
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        let n = self.len + t;
        Ok((kb.narrow(2, 0, n)?, vb.narrow(2, 0, n)?))
    }

    /// Doubles the buffers (up to the limit) until they hold `positions`, keeping what they hold.
    fn grow(&mut self, positions: usize) -> Result<()> {
        let mut capacity = self.capacity.max(1);
        while capacity < positions {
            capacity = (capacity * 2).min(self.limit);
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            for buf in [k, v] {
                let (b, h, _, d) = buf.dims4()?;
                let bigger = Tensor::zeros((b, h, capacity, d), buf.dtype(), buf.device())?;
                if self.len > 0 {
                    bigger.slice_set(&buf.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
                *buf = bigger;
            }
        }
        self.capacity = capacity;
        Ok(())
    }

    /// Counts `t` more positions as cached (after every layer has appended them).
    pub(super) fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
