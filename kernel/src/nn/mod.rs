//! Neural-network building blocks shared by the image tokenizer and the transformer, written
//! so that every op has a backward pass on the CPU and the hot work is one large matmul.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod decode_attention;
pub(crate) mod frozen;
pub(crate) mod fused;
pub(crate) mod gemv;
pub(crate) mod im2col;
pub(crate) mod init;
pub(crate) mod softmax;

pub(crate) use conv::Conv2d;
pub(crate) use init::seeded_var_builder;
