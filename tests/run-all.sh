#!/usr/bin/env bash
# Runs every test of dynaboot: the README's test command. Works on a fresh Debian machine with
# only the Rust toolchain: it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "toolchain"
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features dynaboot/notebook -q -- -D warnings

step "unit and end-to-end tests"
cargo test --workspace --features dynaboot/notebook

# Release, so the web demo's build below reuses these artifacts (a debug wasm build of the
# dependencies at opt-level 3 with full debug info took 6 minutes on its own).
step "kernel builds for the browser (wasm32, no default features)"
cargo build -q --release -p dynaboot --target wasm32-unknown-unknown --no-default-features

step "browser demo: wasm32 release build, served on 127.0.0.1, checked end to end in headless Chromium"
bash web/tests/run.sh

step "notebooks: executed headlessly with CI-sized parameters (installs Jupyter and evcxr if missing)"
bash notebooks/run.sh --quick

step "done"
