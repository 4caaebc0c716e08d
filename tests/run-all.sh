#!/usr/bin/env bash
# Runs every test of dynaboot: the README's test command. Works on a fresh Debian machine with
# only the Rust toolchain: it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "toolchain"
# CI builds once from a fresh clone: incremental caches would only cost disk (1.8 GB) and time.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
# The WebGPU kernels' tests run natively on Vulkan: Mesa's lavapipe where there is no GPU.
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
# lavapipe's window-system layer complains without one; compute needs none.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features dynaboot/notebook -q -- -D warnings

step "unit and end-to-end tests"
# tests/support.rs builds the CLI with these same flags so it reuses this build; change both together.
cargo test --workspace --features dynaboot/notebook

step "API documentation"
# Every pub item documented (lib.rs warns), no link to a private item. Here, after the tests:
# run straight after a cold clippy build, cargo 1.95's target-info probe for rustdoc failed on a
# fresh clone of this machine (it read stray compiler output as its input), twice in a row;
# the same command passed every time on a warm build. No rustc-info cache, so a failed probe is
# not kept, and one more try (a real documentation warning fails both).
doc() { CARGO_CACHE_RUSTC_INFO=0 RUSTDOCFLAGS="-D warnings" cargo doc -p dynaboot --no-deps --features notebook -q; }
doc || { echo "cargo doc failed; once more"; doc; }

# Release, so the web demo's build below reuses these artifacts (a debug wasm build of the
# dependencies at opt-level 3 with full debug info took 6 minutes on its own).
step "kernel builds for the browser (wasm32, no default features)"
cargo build -q --release -p dynaboot --target wasm32-unknown-unknown --no-default-features

step "browser demo: wasm32 release build, wasm-bindgen tests and end to end in headless Chromium, WebGPU and CPU"
bash web/tests/run.sh

step "human-evaluation study: two raters in headless Chromium, a killed server, the report"
bash tests/study/run.sh

step "notebooks: executed headlessly with CI-sized parameters (installs Jupyter and evcxr if missing)"
bash notebooks/run.sh --quick

step "done"
