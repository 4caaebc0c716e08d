#!/usr/bin/env bash
# Builds the browser demo into web/dist (`just web-build`): the web crate in release for
# wasm32, wasm-bindgen --target web (the CLI matching Cargo.lock is installed from crates.io
# when missing; no wasm-opt, nothing downloaded), the static page, and the shipped models.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing wasm-bindgen-cli $version (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$version"
fi
cargo build --release -p dynaboot-web --target wasm32-unknown-unknown
rm -rf web/dist
mkdir -p web/dist/models
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg \
    target/wasm32-unknown-unknown/release/dynaboot_web.wasm
cp web/www/* web/dist/
for m in world dynamics vq; do
    mkdir -p "web/dist/models/$m"
    cp models/$m/config.json models/$m/model.safetensors "web/dist/models/$m/"
    [ -f models/$m/tokenizer.json ] && cp models/$m/tokenizer.json "web/dist/models/$m/"
done
# The planning benchmark's record, which the page quotes.
mkdir -p web/dist/models/imagination
cp models/imagination/plan-eval.json web/dist/models/imagination/
du -sh web/dist/pkg/*.wasm web/dist/models
