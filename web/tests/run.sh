#!/usr/bin/env bash
# The browser demo's tests: builds it (web/build.sh), runs the wasm-bindgen tests in headless
# Chromium with WebGPU (web/tests/browser.rs), serves web/dist on 127.0.0.1 and checks the page
# end to end twice: with WebGPU (SwiftShader) and without (Chromium then offers no adapter and
# the page must fall back to the CPU, where its best candidate must equal native
# `dynaboot predict`'s). Installs what is missing: chromium, chromedriver and node from apt,
# playwright-core from npm (into web/tests/node_modules), wasm-bindgen-cli via web/build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d web/tests/node_modules/playwright-core ] ||
    (cd web/tests && npm install --no-save --no-package-lock --silent playwright-core@1)
bash web/build.sh

echo "wasm-bindgen tests in headless Chromium (WebGPU and CPU)"
CHROMEDRIVER=$(command -v chromedriver) \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/web/tests/webdriver.json" \
    WASM_BINDGEN_TEST_TIMEOUT=600 \
    cargo test --release -p dynaboot-web --target wasm32-unknown-unknown --test browser

source web/tests/serve.sh
# The native reference for the CPU path: the binary the test step built, else a fresh one.
native=target/debug/dynaboot
[ -x "$native" ] || cargo build -q -p dynaboot
mkdir -p out/web
echo "end to end with WebGPU"
CHROMIUM_ARGS="--enable-unsafe-webgpu" node web/tests/e2e.mjs "http://127.0.0.1:$port/" out/web/webgpu.png --expect webgpu
echo "end to end with WebGPU disabled (CPU fallback), checked against native dynaboot predict"
CHROMIUM_ARGS="" node web/tests/e2e.mjs "http://127.0.0.1:$port/" out/web/cpu.png --expect cpu --native "$native"
echo "screenshots: out/web/webgpu.png out/web/cpu.png"
