//! Where models run: a device named `cpu`, `cuda` or `cuda:N` (the CLI's `--device`, the
//! notebooks' `DYNABOOT_DEVICE`), and the dtype a base checkpoint is loaded in there.

use crate::error::{Error, Result};
use candle_core::{DType, Device};

/// The device called `name`; `field` names where the name came from, for the error.
pub fn parse_device(name: &str, field: &str) -> Result<Device> {
    let name = name.trim();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(n) => n
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Invalid(format!("{field} {name}: use cuda or cuda:N")))?,
        None => {
            return Err(Error::Invalid(format!(
                "{field} {name}: use cpu, cuda or cuda:N"
            )));
        }
    };
    Device::new_cuda(ordinal).map_err(|e| {
        Error::Invalid(format!(
            "{field} {name}: {}; build dynaboot with `--features cuda` on a machine with the \
             CUDA toolkit and a GPU",
            crate::error::candle_reason(&e)
        ))
    })
}

/// Weights of a base model: bf16 on a GPU (as the paper trains), f32 on the CPU.
pub fn base_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_say_what_to_write() {
        assert!(parse_device("cpu", "--device").unwrap().is_cpu());
        assert!(parse_device(" cpu\n", "--device").unwrap().is_cpu());
        for bad in ["gpu", "cuda:x", "cuda1", ""] {
            let e = parse_device(bad, "DYNABOOT_DEVICE")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("DYNABOOT_DEVICE") && e.contains("cuda"),
                "{bad}: {e}"
            );
        }
        // Without the cuda feature (or a GPU) a well-formed CUDA name says how to get one.
        #[cfg(not(feature = "cuda"))]
        {
            let e = parse_device("cuda:0", "--device").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
