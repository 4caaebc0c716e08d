//! One interface over the two backends that run the decoder at inference: candle's
//! [`Chameleon`] (CPU, CUDA, and the browser's CPU path) and the WebGPU decoder
//! (`gpu::GpuChameleon`). Image sampling ([`super::world`]), action scoring and explaining
//! ([`super::dynamics`]) and best-of-N ranking ([`super::verifier`]) are written once against
//! it, so the CLI, the playground and the browser choose alike on either backend.
//!
//! Calls that return logits are `async` because GPU readbacks are (the browser cannot block).
//! candle's are ready at once: [`ready`] takes their value without an executor.

use super::chameleon::{Chameleon, Pass};
use super::kv_cache::KvCache;
use crate::error::{Error, Result};
use candle_core::Tensor;
use std::future::Future;
use std::ops::Range;

/// Most sequences an inference pass runs at once: more samples, candidates or pairs run in
/// batches of this size, so memory does not grow with N (and results do not change: each
/// sample keeps its own random stream).
pub(crate) const MAX_BATCH: usize = 16;

/// Which positions of each batch row a forward pass returns logits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Positions {
    /// The last one (what generation needs).
    Last,
    /// These positions of the ids given (what scoring a completion needs).
    Span(Range<usize>),
    /// Every one (what the tests, the kernel's and the browser's, compare backbones on).
    All,
}

/// A decoder with a KV cache that hands out the logits of chosen positions.
#[allow(async_fn_in_trait)]
pub trait Backbone {
    /// Keys and values of the positions seen so far.
    type Cache;

    /// An empty cache for `batch` sequences.
    fn new_cache(&self, batch: usize) -> Result<Self::Cache>;

    /// A batch-1 cache repeated `n` times: one prefill serves `n` samples.
    fn repeat_cache(&self, cache: Self::Cache, n: usize) -> Result<Self::Cache>;

    /// Runs token ids (the cache's batch of equal rows, row-major) after the cached positions;
    /// returns the logits `(batch, positions, vocab)` of `positions`, flattened.
    async fn forward(
        &self,
        ids: &[u32],
        cache: &mut Self::Cache,
        positions: Positions,
    ) -> Result<Vec<f32>>;

    /// Runs a prompt into the cache; the logits of its last position.
    async fn prefill(&self, ids: &[u32], cache: &mut Self::Cache) -> Result<Vec<f32>> {
        self.forward(ids, cache, Positions::Last).await
    }

    /// A decode step: one token per row; the logits of the next position of each row.
    async fn step(&self, ids: &[u32], cache: &mut Self::Cache) -> Result<Vec<f32>> {
        self.forward(ids, cache, Positions::Last).await
    }
}

impl Backbone for Chameleon {
    type Cache = KvCache;

    fn new_cache(&self, batch: usize) -> Result<KvCache> {
        Ok(KvCache::with_batch(&self.config, batch))
    }

    fn repeat_cache(&self, mut cache: KvCache, n: usize) -> Result<KvCache> {
        cache.repeat_batch(n)?;
        Ok(cache)
    }

    async fn forward(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        positions: Positions,
    ) -> Result<Vec<f32>> {
        let b = cache.batch();
        if ids.is_empty() || !ids.len().is_multiple_of(b) {
            return Err(Error::Invalid(format!(
                "{} token ids do not make {b} equal rows",
                ids.len()
            )));
        }
        let ids = Tensor::from_vec(ids.to_vec(), (b, ids.len() / b), self.device())?;
        let logits = match positions {
            Positions::Last => self.forward_last(&ids, Some(cache))?,
            Positions::Span(span) => {
                let hidden = self.hidden(&ids, Some(cache), Pass::Infer)?;
                let span = hidden.narrow(1, span.start, span.len())?;
                self.logits(&span.contiguous()?)?
            }
            Positions::All => self.forward(&ids, Some(cache), Pass::Infer)?,
        };
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// The value of a future that is ready at once (a candle backbone's), without an executor.
pub(crate) fn ready<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => Err(Error::Invalid(
            "a backbone that waits (the GPU's) was run synchronously; await it instead".into(),
        )),
    }
}
