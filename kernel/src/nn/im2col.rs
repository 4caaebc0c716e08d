//! im2col and its adjoint col2im as candle custom ops with a backward pass.
//!
//! Gathering convolution patches with tensor ops (`narrow` + `cat`) costs one full-size
//! temporary per kernel tap forward and again backward; these ops do it in one pass over
//! memory each way. CPU only (the browser build included); other devices use candle's conv.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// Geometry of a channels-last convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) batch: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) channels: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

impl Geometry {
    pub(crate) fn out_hw(&self) -> (usize, usize) {
        let f = |n: usize| (n + 2 * self.padding - self.kernel) / self.stride + 1;
        (f(self.height), f(self.width))
    }
    fn cols_shape(&self) -> (usize, usize) {
        let (ho, wo) = self.out_hw();
        (
            self.batch * ho * wo,
            self.kernel * self.kernel * self.channels,
        )
    }
    /// Calls `f(col_offset, x_offset)` for every (output pixel, tap) that reads the input.
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize)) {
        let (ho, wo) = self.out_hw();
        let (k, c) = (self.kernel, self.channels);
        let row_len = k * k * c;
        for b in 0..self.batch {
            for oy in 0..ho {
                for ox in 0..wo {
                    let row = ((b * ho + oy) * wo + ox) * row_len;
                    for ki in 0..k {
                        let iy = (oy * self.stride + ki) as isize - self.padding as isize;
                        if iy < 0 || iy >= self.height as isize {
                            continue;
                        }
                        for kj in 0..k {
                            let ix = (ox * self.stride + kj) as isize - self.padding as isize;
                            if ix < 0 || ix >= self.width as isize {
                                continue;
                            }
                            let src =
                                ((b * self.height + iy as usize) * self.width + ix as usize) * c;
                            f(row + (ki * k + kj) * c, src);
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{what}: only f32 is supported")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: input must be contiguous")
    };
    Ok(&v[a..b])
}

/// `(batch, h, w, c)` -> `(batch * ho * wo, k * k * c)` patches, zero outside the image.
pub(crate) struct Im2Col(pub Geometry);

/// The adjoint: patches back to an image, overlapping taps summed.
pub(crate) struct Col2Im(pub Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s, l, "im2col")?;
        let (rows, cols) = g.cols_shape();
        let mut out = vec![0f32; rows * cols];
        let c = g.channels;
        g.for_each_tap(|dst, src| out[dst..dst + c].copy_from_slice(&x[src..src + c]));
        Ok((CpuStorage::F32(out), Shape::from((rows, cols))))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im-nhwc"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = f32_slice(s, l, "col2im")?;
        let mut out = vec![0f32; g.batch * g.height * g.width * g.channels];
        let c = g.channels;
        g.for_each_tap(|src, dst| {
            for (o, v) in out[dst..dst + c].iter_mut().zip(&cols[src..src + c]) {
                *o += v;
            }
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.height, g.width, g.channels)),
        ))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Im2Col(self.0))?))
    }
}
