//! Helpers for the end-to-end tests: run the `dynaboot` binary and read what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `dynaboot` binary of this workspace, built once per test run (same profile as the tests).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>");
        let release = profile_dir.ends_with("release");
        // The same packages and features as the README's test command (`cargo test
        // --workspace --features dynaboot/notebook` in tests/run-all.sh): features unify over
        // the whole workspace, so this reuses that build; `-p dynaboot` alone would compile
        // the kernel again with other features (5 minutes of CI on 2 cores).
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "--workspace", "--bins"]);
        cmd.args(["--features", "dynaboot/notebook"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build -p dynaboot failed");
        profile_dir.join("dynaboot")
    })
}

/// Runs `dynaboot args...` and returns its output, whatever the exit status.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("spawning dynaboot")
}

/// Runs `dynaboot args...`, asserting success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "dynaboot {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `dynaboot args...`, asserting it fails cleanly (exit 1, no panic); returns stderr.
pub fn fails(args: &[&str]) -> String {
    fails_with(args, 1)
}

/// Runs `dynaboot args...`, asserting the command line itself is refused (exit 2, the usage
/// error of an argument's value, no panic); returns stderr.
pub fn refused(args: &[&str]) -> String {
    fails_with(args, 2)
}

fn fails_with(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "dynaboot {args:?} should fail with exit {code}; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "dynaboot {args:?} panicked: {stderr}"
    );
    stderr
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The tiny real-architecture Chameleon checkpoint (`fixtures/chameleon-tiny`).
pub fn chameleon_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chameleon-tiny")
}

/// A 32x32 scene for the fixture: a coloured 10x10 square at column `x` on a grey table.
pub fn square_scene(x: u32, colour: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_fn(32, 32, |i, j| {
        if (x..x + 10).contains(&i) && (12..22).contains(&j) {
            image::Rgb(colour)
        } else {
            image::Rgb([200, 200, 190])
        }
    })
}

/// `max |a - b|` of two tensors of one shape.
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| {
            d.abs()?
                .max_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_scalar::<f32>()
        })
        .expect("two tensors of one shape")
}
