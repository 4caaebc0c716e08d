//! Neural-network building blocks shared by the image tokenizer and the transformer, written
//! so that every op has a backward pass on the CPU and the hot work is one large matmul.

pub mod attention;
pub mod conv;
pub mod decode_attention;
pub mod frozen;
pub mod fused;
pub mod gemv;
pub mod im2col;
pub mod init;
pub mod softmax;

pub use conv::Conv2d;
pub use init::seeded_var_builder;
