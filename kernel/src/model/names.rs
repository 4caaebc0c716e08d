//! The HF parameter names of the Chameleon decoder (`model.layers.N.self_attn.q_proj.weight`,
//! ...): the one list that candle loading ([`super::chameleon`], through `vb.pp`), LoRA
//! merging and PEFT names ([`super::lora`]) and the WebGPU path (`gpu::GpuChameleon`) read,
//! so real Chameleon/Anole safetensors map onto every one of them alike.

/// The token embedding table `(vocab, hidden)`.
pub(crate) const EMBED_TOKENS: &str = "model.embed_tokens";
/// The final norm.
pub(crate) const NORM: &str = "model.norm";
/// The language-model head `(vocab, hidden)` (absent with tied embeddings).
pub(crate) const LM_HEAD: &str = "lm_head";

/// A decoder layer's attention block and MLP.
pub(crate) const SELF_ATTN: &str = "self_attn";
pub(crate) const MLP: &str = "mlp";
/// A layer's norms before (or, with swin norm, after) attention and the MLP.
pub(crate) const INPUT_LAYERNORM: &str = "input_layernorm";
pub(crate) const POST_ATTENTION_LAYERNORM: &str = "post_attention_layernorm";
/// The per-head query and key norms inside [`SELF_ATTN`] (`weight` and `bias`).
pub(crate) const Q_NORM: &str = "q_norm";
pub(crate) const K_NORM: &str = "k_norm";

/// The linear projections of a layer, `(block, name)`, in the order q, k, v, o, gate, up,
/// down: what LoRA can adapt. q/k/v and gate/up read the same input (fused at inference).
pub(crate) const PROJECTIONS: [(&str, &str); 7] = [
    (SELF_ATTN, "q_proj"),
    (SELF_ATTN, "k_proj"),
    (SELF_ATTN, "v_proj"),
    (SELF_ATTN, "o_proj"),
    (MLP, "gate_proj"),
    (MLP, "up_proj"),
    (MLP, "down_proj"),
];

/// The prefix of layer `i`'s parameters.
pub(crate) fn layer(i: usize) -> String {
    format!("model.layers.{i}")
}

/// The HF module path of a projection (one of [`PROJECTIONS`]) of layer `i`.
pub(crate) fn projection(i: usize, (block, name): (&str, &str)) -> String {
    format!("{}.{block}.{name}", layer(i))
}

/// `module.weight`.
pub(crate) fn weight(module: &str) -> String {
    format!("{module}.weight")
}

/// `module.bias`.
pub(crate) fn bias(module: &str) -> String {
    format!("{module}.bias")
}
