//! The WebGPU inference path (feature `webgpu`). candle has no WebGPU backend, so the forward
//! passes the browser demo needs are written here as WGSL compute kernels run through `wgpu`:
//! WebGPU in the browser, Vulkan/Metal/DX12/GL natively (which is how the tests run it, on
//! Mesa's lavapipe without a GPU). Everything is f32 and reads the same safetensors weights as
//! the candle models; the candle CPU forward pass is the reference it is tested against.
//!
//! - [`Gpu`]: the device, its queue and the compiled kernels; buffers in and out.
//! - `kernels`: one launcher per WGSL kernel (`wgsl/*.wgsl`).
//! - `GpuChameleon`: the decoder with a KV cache, a `crate::model::backbone::Backbone`.
//! - `GpuVqDecoder`: the embedded image tokenizer's decoder (codes -> pixels).
//! - [`GpuVerifier`]: both models and the decoder on the GPU, for best-of-N (the same
//!   sampling, scoring and ranking code as candle's).
//!
//! Calls that read results back are `async` (the browser cannot block); natively,
//! [`block_on`] runs them.

mod chameleon;
pub(crate) mod kernels;
mod verifier;
mod vq_decoder;

pub use chameleon::{GpuChameleon, GpuKvCache};
pub use verifier::GpuVerifier;
pub(crate) use vq_decoder::GpuVqDecoder;

use crate::error::{Error, Result};
use kernels::{Kernel, Kernels};
use wgpu::util::DeviceExt;

/// Runs a future to completion on this thread (native only: the browser awaits instead).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn gpu_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Gpu(format!("{what}: {e}"))
}

/// A wgpu device with dynaboot's kernels compiled for it.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    kernels: Kernels,
    info: wgpu::AdapterInfo,
}

/// Recorded GPU work, submitted at once by [`Gpu::submit`]: kernel dispatches and buffer
/// copies, in order.
#[derive(Default)]
pub(crate) struct Commands {
    steps: Vec<Step>,
}

struct Dispatch {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    groups: (u32, u32),
}

enum Step {
    Dispatch(Dispatch),
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    },
}

impl Commands {
    /// Copies `floats` f32 values from `src[src_at..]` to `dst[dst_at..]` (offsets in values).
    pub(crate) fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_at: usize,
        dst: &wgpu::Buffer,
        dst_at: usize,
        floats: usize,
    ) {
        self.steps.push(Step::Copy {
            src: src.clone(),
            src_offset: 4 * src_at as u64,
            dst: dst.clone(),
            dst_offset: 4 * dst_at as u64,
            bytes: 4 * floats as u64,
        });
    }
}

impl Gpu {
    /// The first adapter wgpu offers (WebGPU in a browser that has it; natively Vulkan, Metal,
    /// DX12 or GL, or the backend `WGPU_BACKEND` names), or `None` when there is none: the
    /// caller then falls back to the CPU. A browser whose `navigator.gpu` exists but yields no
    /// adapter also gives `None`.
    pub async fn new() -> Result<Option<Gpu>> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        // Compute needs no GL (which also probes for a display); `WGPU_BACKEND` overrides.
        desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let instance = wgpu::util::new_instance_with_webgpu_detection(desc).await;
        let adapter = match instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
        {
            Ok(a) => a,
            Err(_) => return Ok(None),
        };
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("dynaboot"),
                required_limits: wgpu::Limits {
                    max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                    max_buffer_size: limits.max_buffer_size,
                    max_storage_buffers_per_shader_stage: limits
                        .max_storage_buffers_per_shader_stage,
                    ..wgpu::Limits::downlevel_defaults()
                },
                ..Default::default()
            })
            .await
            .map_err(|e| gpu_error("requesting the device", e))?;
        let kernels = Kernels::new(&device);
        Ok(Some(Gpu {
            device,
            queue,
            kernels,
            info: adapter.get_info(),
        }))
    }

    /// What runs the kernels, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) on Vulkan` or, in a
    /// browser, which hides the device, `WebGPU (fallback adapter)`.
    pub fn describe(&self) -> String {
        let name = match self.info.name.as_str() {
            "" if self.is_software() => "fallback adapter",
            "" => "adapter",
            name => name,
        };
        match self.info.backend {
            wgpu::Backend::BrowserWebGpu => format!("WebGPU ({name})"),
            backend => format!("{name} on {backend:?}"),
        }
    }

    /// Whether this is a CPU emulation (lavapipe, SwiftShader, WARP).
    pub(crate) fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// A storage buffer holding `data`.
    pub(crate) fn upload(&self, data: &[f32]) -> wgpu::Buffer {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    /// A storage buffer holding u32 `data` (token ids, row indices).
    pub(crate) fn upload_u32(&self, data: &[u32]) -> wgpu::Buffer {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    fn upload_bytes(&self, bytes: &[u8]) -> wgpu::Buffer {
        // wgpu refuses empty bindings: keep at least one value.
        let bytes = if bytes.is_empty() {
            &[0u8; 4][..]
        } else {
            bytes
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A zeroed storage buffer of `floats` f32 values.
    pub(crate) fn zeros(&self, floats: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4 * floats.max(1) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Submits `batch`, then reads `floats` values of `out` back.
    pub(crate) async fn run(
        &self,
        batch: Commands,
        out: &wgpu::Buffer,
        floats: usize,
    ) -> Result<Vec<f32>> {
        let bytes = 4 * floats as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encode(batch);
        encoder.copy_buffer_to_buffer(out, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        // Natively the callback fires inside `poll`; in the browser, when the promise resolves.
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| gpu_error("waiting for the GPU", e))?;
        rx.await
            .map_err(|e| gpu_error("reading results back", e))?
            .map_err(|e| gpu_error("reading results back", e))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| gpu_error("reading results back", e))?;
        let values = bytemuck::cast_slice::<u8, f32>(&view)[..floats].to_vec();
        drop(view);
        staging.unmap();
        Ok(values)
    }

    /// Submits `batch` without reading anything back.
    pub(crate) fn submit(&self, batch: Commands) {
        let encoder = self.encode(batch);
        self.queue.submit([encoder.finish()]);
    }

    fn encode(&self, batch: Commands) -> wgpu::CommandEncoder {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut steps = batch.steps.into_iter().peekable();
        while let Some(step) = steps.next() {
            match step {
                Step::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    bytes,
                } => encoder.copy_buffer_to_buffer(&src, src_offset, &dst, dst_offset, bytes),
                Step::Dispatch(first) => {
                    // Consecutive dispatches share one pass; WebGPU orders their writes.
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    let mut next = Some(first);
                    while let Some(d) = next {
                        pass.set_pipeline(self.kernels.pipeline(d.kernel));
                        pass.set_bind_group(0, &d.bind, &[]);
                        pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
                        next = match steps.next_if(|s| matches!(s, Step::Dispatch(_))) {
                            Some(Step::Dispatch(d)) => Some(d),
                            _ => None,
                        };
                    }
                }
            }
        }
        encoder
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Tensor;
    use std::rc::Rc;

    /// The test machine's wgpu adapter (lavapipe on a machine without a GPU; the test command
    /// installs `mesa-vulkan-drivers`). No adapter is a failure, not a skip.
    pub(crate) fn gpu() -> Rc<Gpu> {
        let gpu = block_on(Gpu::new()).expect("a wgpu device");
        Rc::new(gpu.expect(
            "no wgpu adapter: install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers)",
        ))
    }

    /// max |a - b| / max |b|, over two equally long slices.
    pub(crate) fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "outputs of different lengths");
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let scale = b.iter().map(|y| y.abs()).fold(0f32, f32::max);
        diff / scale.max(1e-12)
    }

    pub(crate) fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn copies_and_readback_round_trip() {
        let gpu = gpu();
        let a = gpu.upload(&[1.0, 2.0, 3.0, 4.0]);
        let b = gpu.zeros(6);
        let mut batch = Commands::default();
        batch.copy(&a, 1, &b, 2, 3);
        let out = block_on(gpu.run(batch, &b, 6)).unwrap();
        assert_eq!(out, [0.0, 0.0, 2.0, 3.0, 4.0, 0.0]);
        println!("adapter: {}", gpu.describe());
    }
}
